"""Fashion-MNIST held in memory as uint8 tensors; batches are normalised (and augmented)
as whole batches on the device, in ``on_after_batch_transfer`` (datamodules/images.py)."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST

from datamodules.augment import BatchAugment
from datamodules.declarations import FASHION
from datamodules.images import ImageDataModule

log = logging.getLogger(__name__)

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


class FashionMNISTUnavailable(RuntimeError):
    pass


def ensure_raw_files(data_dir: str | os.PathLike, debian_dir: str | os.PathLike = DEBIAN_DIR,
                     download: bool = True) -> str:
    """Make ``<data_dir>/FashionMNIST/raw/`` hold the four IDX files; return where they came from.

    Sources, in order: already there; the Debian package ``dataset-fashion-mnist`` (its .gz
    files differ in md5 from torchvision's list, so they are decompressed here rather than
    handed to torchvision); torchvision's own download.
    """
    raw = Path(data_dir) / "FashionMNIST" / "raw"
    if all((raw / f).is_file() for f in RAW_FILES):
        return "cached"
    debian = Path(debian_dir)
    if all((debian / f"{f}.gz").is_file() for f in RAW_FILES):
        raw.mkdir(parents=True, exist_ok=True)
        for f in RAW_FILES:
            # A temporary name of this process's own: two runs started together on a fresh
            # clone both unpack, and each file is replaced whole, by either.
            tmp = raw / f".{f}.{os.getpid()}.partial"
            try:
                with gzip.open(debian / f"{f}.gz", "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(raw / f)
            finally:
                tmp.unlink(missing_ok=True)
        log.info("Fashion-MNIST: unpacked %s into %s", debian, raw)
        return "debian"
    if not download:
        raise FashionMNISTUnavailable(
            f"Fashion-MNIST is not in {raw} and data.download=false. Get it one of two ways: offline, "
            f"apt-get install dataset-fashion-mnist (puts the .gz files in {DEBIAN_DIR}; or point "
            f"data.debian_dir at a folder holding them); online, run with data.download=true and "
            f"torchvision downloads it into {data_dir}."
        )
    try:
        FashionMNIST(str(data_dir), train=True, download=True)
        FashionMNIST(str(data_dir), train=False, download=True)
        return "download"
    except Exception as exc:  # no network, mirror down, bad checksum...
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]  # torchvision lists every mirror it tried
        raise FashionMNISTUnavailable(
            f"Fashion-MNIST is not in {raw} and downloading it failed ({reason}); this machine may be "
            f"offline. Without a network: apt-get install dataset-fashion-mnist (puts the .gz files in "
            f"{DEBIAN_DIR}), or point data.debian_dir at a folder holding the four .gz files, or copy the "
            f"four unpacked files ({', '.join(RAW_FILES)}) into {raw}."
        ) from exc


class FashionMNISTDataModule(ImageDataModule):
    """Official 60k/10k split; ``val_size`` images carved from train with ``split_seed``."""

    input_shape = FASHION.input_shape
    target_kind = FASHION.target_kind
    num_classes = FASHION.num_classes
    class_names = FASHION.class_names
    normalization = FASHION.normalization

    def __init__(
        self,
        data_dir: str = "data",
        val_size: int = 5000,
        split_seed: int = 42,
        batch_size: int = 128,
        eval_batch_size: int | None = 1000,
        augment: BatchAugment | None = None,
        channels_last: bool = False,
        on_device: bool = False,
        download: bool = True,
        debian_dir: str = DEBIAN_DIR,
    ):
        super().__init__(batch_size, eval_batch_size, augment, channels_last, on_device)
        if not 0 <= val_size < 60000:
            raise ValueError(f"val_size must be in [0, 60000), got {val_size}")
        self.data_dir = data_dir
        self.val_size = val_size
        self.split_seed = split_seed
        self.download = download
        self.debian_dir = debian_dir

    def prepare_data(self) -> None:
        ensure_raw_files(self.data_dir, self.debian_dir, self.download)

    def load_splits(self):
        ensure_raw_files(self.data_dir, self.debian_dir, self.download)
        train = FashionMNIST(self.data_dir, train=True, download=False)
        test = FashionMNIST(self.data_dir, train=False, download=False)
        x, y = train.data.unsqueeze(1).contiguous(), train.targets
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size :]
        train_x = x[train_idx] if self.augment is None else self.augment.prepare(x[train_idx])
        splits = {"train": (train_x, y[train_idx]), "test": (test.data.unsqueeze(1).contiguous(), test.targets)}
        # Without a val split, validate on test: say so rather than hide it.
        splits["val"] = (x[val_idx], y[val_idx]) if self.val_size else splits["test"]
        return splits
