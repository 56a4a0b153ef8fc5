"""A folder of images in torchvision's ImageFolder layout (datamodules/folder_layout.py), grey or
RGB, optionally resized.

When the decoded images fit in ``memory_budget_mb`` they are decoded once, by parallel threads,
into one uint8 tensor per split and served as whole-tensor batches (datamodules/batching.py), as
Fashion-MNIST is: after the first epoch an image folder trains as fast as the in-memory data set
(benchmarks/image_folder.py). Beyond the budget, a ``DataLoader`` with ``num_workers`` processes
decodes each batch. Either way batches are uint8 until ``on_after_batch_transfer`` normalises
them with the per-channel mean and std of the training images.

The split (each part's files) and the normalisation are the data module's state: Lightning saves
them in every checkpoint (plain lists and floats), so a resumed run, an evaluation and a
prediction use the training run's split and statistics, whatever was added to the folder since;
the split is also written to ``<run folder>/data_split.json``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules import folder_layout
from datamodules.augment import BatchAugment
from datamodules.contract import DataError
from datamodules.images import ImageDataModule
from datamodules.splits import SPLITS, check_fractions, write_split_record

log = logging.getLogger(__name__)

CHUNK = 256  # files per decoding task: fewer, larger tasks for the thread pool


def decode(path: Path, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """One image as uint8 ``(channels, H, W)``, resized to ``size`` (antialiased) when given."""
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2.functional import resize

    try:
        image = decode_image(read_file(str(path)), mode=ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB)
    except RuntimeError as error:
        raise DataError(f"{path} cannot be decoded as an image ({str(error).splitlines()[0]}): remove it or "
                        "replace it.") from None
    if size is not None and tuple(image.shape[-2:]) != size:
        image = resize(image, list(size), antialias=True)
    return image


class ImageFiles(Dataset):
    """Images decoded one by one (the path beyond the memory budget, for a DataLoader's workers)."""

    def __init__(self, root: Path, files: list[tuple[str, int]], shape: tuple[int, int, int], resize: bool):
        self.root, self.files, self.shape, self.resize = root, files, shape, resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        name, label = self.files[i]
        image = decode(self.root / name, self.shape[0], self.shape[1:] if self.resize else None)
        if tuple(image.shape) != self.shape:
            raise DataError(different_size(self.root / name, image, self.shape))
        return image, label


def different_size(path: Path, image: torch.Tensor, shape: tuple[int, ...]) -> str:
    return (f"{path} is {image.shape[-1]}x{image.shape[-2]} pixels, the first image {shape[-1]}x{shape[-2]}: the "
            f"images differ in size. Resize them all as they load with data.image_size={shape[-2]} (or [height, width]).")


class ImageFolderDataModule(ImageDataModule):
    """``root/<class>/<image>`` (or ``root/train|val|test/<class>/<image>``): the classes are the
    folder names, sorted. A part without its own folder is carved from the training images by a
    seeded, stratified split: ``val_fraction`` and ``test_fraction`` of each class."""

    def __init__(
        self,
        root: str,
        image_size: int | list[int] | None = None,
        channels: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 42,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        augment: BatchAugment | None = None,
        channels_last: bool = False,
        on_device: bool = False,
        memory_budget_mb: float = 4096,
        decode_threads: int | None = None,
        num_workers: int = 2,
    ):
        super().__init__(batch_size, eval_batch_size, augment, channels_last, on_device)
        declared = folder_layout.declare(root, image_size, channels)
        check_fractions(val_fraction, test_fraction)
        self.input_shape, self.target_kind = declared.input_shape, declared.target_kind
        self.num_classes, self.class_names = declared.num_classes, declared.class_names
        self.root = Path(str(root)).expanduser()
        self.resize = image_size is not None
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.memory_budget_mb, self.decode_threads, self.num_workers = memory_budget_mb, decode_threads, num_workers
        self.files: dict[str, list[tuple[str, int]]] | None = None  # the split: from setup, or a checkpoint
        self.decode_s: float | None = None  # how long decoding the images took

    @property
    def in_memory(self) -> bool:
        count = sum(len(v) for v in (self.files or self._split()).values())
        return count * math.prod(self.input_shape) <= self.memory_budget_mb * 2**20

    def _split(self) -> dict[str, list[tuple[str, int]]]:
        layout = folder_layout.scan(str(self.root))
        if layout.class_names != self.class_names:
            raise DataError(f"data.root={self.root}: its class folders changed since this data module was made.")
        return folder_layout.split_files(layout, self.val_fraction, self.test_fraction, self.split_seed)

    def setup(self, stage: str | None = None) -> None:
        if self.files is None:
            self.files = self._split()
            self.write_split()
        if self.in_memory:
            super().setup(stage)
        elif self.normalization is None:
            self.normalization = self.statistics(self.decode_all(self.files["train"][:2000]))
            if self._shuffle_seed is None:
                self._shuffle_seed = int(torch.randint(0, 2**31 - 1, ()).item())

    def load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        started = time.perf_counter()
        splits = {}
        for part in SPLITS:
            files = self.files[part]
            splits[part] = (self.decode_all(files), torch.tensor([label for _, label in files], dtype=torch.long))
        self.decode_s = time.perf_counter() - started
        log.info("Decoded %d images of %s in %.1f s", sum(len(v[1]) for v in splits.values()), self.root, self.decode_s)
        if self.normalization is None:
            self.normalization = self.statistics(splits["train"][0])
        return splits

    def decode_all(self, files: list[tuple[str, int]]) -> torch.Tensor:
        """The images of ``files`` as one uint8 tensor ``(N, C, H, W)``, decoded by parallel threads."""
        with torch.inference_mode(False):  # a plain tensor, which the threads (outside any mode) fill
            out = torch.empty((len(files), *self.input_shape), dtype=torch.uint8)
        size = tuple(self.input_shape[1:]) if self.resize else None

        def chunk(start: int) -> None:
            for i in range(start, min(start + CHUNK, len(files))):
                image = decode(self.root / files[i][0], self.input_shape[0], size)
                if tuple(image.shape) != tuple(self.input_shape):
                    raise DataError(different_size(self.root / files[i][0], image, self.input_shape))
                out[i] = image

        threads = self.decode_threads or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(chunk, range(0, len(files), CHUNK)))  # list(): raises the first error
        return out

    @staticmethod
    def statistics(images: torch.Tensor) -> dict[str, Any]:
        """The contract's normalisation: each channel's mean and std over ``images`` (uint8)."""
        if not len(images):
            raise DataError("no training images to compute the normalisation from: the split left train empty.")
        total = torch.zeros(images.shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for chunk in images.split(max(1, 2**22 // images[0].numel())):  # a few MB at a time
            pixels = chunk.transpose(0, 1).reshape(images.shape[1], -1).double() / 255
            total += pixels.sum(dim=1)
            squares += pixels.square().sum(dim=1)
        count = images.numel() / images.shape[1]
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
        return {"scale": 1 / 255, "mean": [round(v, 6) for v in mean.tolist()],
                "std": [round(v, 6) for v in std.tolist()]}

    def write_split(self) -> None:
        """``data_split.json`` in the run folder: the root, the classes and each part's files."""
        write_split_record(self.trainer, {
            "root": str(self.root), "class_names": list(self.class_names),
            "splits": {part: [name for name, _ in files] for part, files in self.files.items()}})

    # -- saved in every checkpoint by Lightning (plain lists, strings and floats)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(super().state_dict())
        if self.files is not None:
            state["split"] = {part: [name for name, _ in files] for part, files in self.files.items()}
            state["class_names"] = list(self.class_names)
        if self.normalization is not None:
            state["normalization"] = dict(self.normalization)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "normalization" in state:
            self.normalization = dict(state["normalization"])
        if "split" not in state:
            return
        if list(state["class_names"]) != list(self.class_names):
            raise DataError(f"data.root={self.root} has the classes {', '.join(self.class_names)}, but the checkpoint "
                            f"was trained on {', '.join(state['class_names'])}: give the folder it was trained on.")
        index = {name: i for i, name in enumerate(self.class_names)}
        files = {part: [(name, index[Path(name).parent.name]) for name in names] for part, names in state["split"].items()}
        missing = next((name for names in state["split"].values() for name in names if not (self.root / name).is_file()),
                       None)
        if missing is not None:
            raise DataError(f"data.root={self.root} lacks {missing}, which the checkpoint's split names: give the "
                            "folder the run was trained on.")
        if files != self.files:  # the folder changed since: the checkpoint's split wins
            self.files, self.splits = files, {}
            self.write_split()

    # -- beyond the memory budget: a DataLoader decoding each batch

    def _loader(self, part: str, shuffle: bool, batch_size: int) -> DataLoader:
        if self.files is None:
            self.setup()
        dataset = ImageFiles(self.root, self.files[part], tuple(self.input_shape), self.resize)
        generator = torch.Generator().manual_seed(self._shuffle_seed or 0) if shuffle else None
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        if self.in_memory:
            return super().train_dataloader()
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def ordered_dataloader(self, split: str):
        if self.in_memory:
            return super().ordered_dataloader(split)
        return self._loader(split, shuffle=False, batch_size=self.eval_batch_size)
