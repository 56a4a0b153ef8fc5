"""An image folder in torchvision's ImageFolder layout, read without decoding an image (plain
Python and Pillow's header reader): ``root/<class>/<image>``, or ``root/train/<class>/<image>``
with ``val/`` and ``test/`` beside it when they exist. A part that is not there is carved from
the training images by a seeded, stratified split (datamodules/splits.py).

Files are named relative to ``root`` (``train/cat/001.png``), so a saved split is a list of names
that means the same wherever the folder is."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from datamodules.contract import DataError, Declared
from datamodules.splits import SPLITS, seeded_split

# What torchvision.io.decode_image reads.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
LAYOUT = ("the ImageFolder layout: ROOT/<class>/<image>.png (or .jpg, .jpeg, .webp), or ROOT/train/<class>/... "
          "with ROOT/val/ and ROOT/test/ beside it")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class FolderLayout:
    """The class names (sorted folder names) and each part's images as (name relative to root, class index)."""

    root: Path
    class_names: tuple[str, ...]
    parts: dict[str, tuple[tuple[str, int], ...]]  # "train", "val", "test" present as folders, or "all"

    def first_image(self) -> Path:
        return self.root / next(iter(next(iter(self.parts.values()))))[0]


def _images(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def scan(root: str) -> FolderLayout:
    """The layout of ``root``; a DataError says what is wrong with it. Read again when a folder of
    it changed (an image added or removed changes its folder's modification time)."""
    base = Path(root).expanduser()
    return _scan(root, _stamp(base) if base.is_dir() else ())


def _stamp(base: Path) -> tuple[tuple[str, int], ...]:
    """The modification times of ``base`` and of the folders two levels down (its classes, or its
    parts and their classes)."""
    found, level = [], [base]
    for _ in range(3):
        found += [(str(f), f.stat().st_mtime_ns) for f in level]
        level = [Path(e.path) for f in level for e in os.scandir(f) if e.is_dir()]
    return tuple(found)


@functools.lru_cache(maxsize=4)
def _scan(root: str, stamp: tuple[tuple[str, int], ...]) -> FolderLayout:
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data.root={root}: no such folder. Give a folder of images in {LAYOUT}.")
    presplit = [s for s in SPLITS if (base / s).is_dir()]
    if presplit and "train" not in presplit:
        raise DataError(f"data.root={root} has {'/, '.join(presplit)}/ but no train/ folder: give the training "
                        f"images in train/<class>/ ({LAYOUT}).")
    class_names = tuple(_class_folders(base / "train" if presplit else base))
    if not class_names:
        raise DataError(f"data.root={root} has no class folders: expected {LAYOUT}.")
    index = {name: i for i, name in enumerate(class_names)}
    parts: dict[str, tuple[tuple[str, int], ...]] = {}
    for part in presplit or ["all"]:
        folder = base / part if presplit else base
        found = _class_folders(folder)
        extra = [c for c in found if c not in index]
        if extra:
            raise DataError(f"data.root={root}: {part}/ has classes that train/ has not ({', '.join(extra[:5])}); "
                            f"every class of val/ and test/ needs training images in train/<class>/.")
        prefix = f"{part}/" if presplit else ""
        parts[part] = tuple((f"{prefix}{c}/{name}", index[c]) for c in found for name in _images(folder / c))
    if not any(parts.values()) or not (parts.get("train") or parts.get("all")):
        raise DataError(f"data.root={root} holds no training images (.png, .jpg, .jpeg, .webp) in its class "
                        f"folders: expected {LAYOUT}.")
    return FolderLayout(base, class_names, parts)


def split_files(layout: FolderLayout, val_fraction: float, test_fraction: float, seed: int
                ) -> dict[str, list[tuple[str, int]]]:
    """Each part's images: a part that is a folder is taken whole; one that is not is carved from
    the training images (seeded, stratified by class)."""
    given = {p: list(files) for p, files in layout.parts.items() if p != "all"}
    pool = list(layout.parts.get("all") or given.pop("train"))
    carve = {"val": val_fraction if "val" not in given else 0.0, "test": test_fraction if "test" not in given else 0.0}
    indices = seeded_split(len(pool), carve["val"], carve["test"], seed, labels=[label for _, label in pool])
    split = {part: [pool[i] for i in indices[part]] for part in SPLITS}
    split.update(given)
    return split


def image_header(path: Path) -> tuple[int, int, str]:
    """(width, height, mode) of an image, from its header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width, image.height, image.mode
    except OSError as error:
        raise DataError(f"{path} cannot be read as an image ({error}): remove it or replace it.") from None


def image_shape(layout: FolderLayout, image_size: int | list[int] | None, channels: int | None) -> tuple[int, int, int]:
    """(C, H, W) of the model's input: the channels and size asked for, else the first image's."""
    if channels not in (None, 1, 3):
        raise DataError(f"data.channels={channels!r} is not allowed: 1 (grey), 3 (RGB) or null (as the first image is).")
    width = height = mode = None
    if image_size is None or channels is None:
        width, height, mode = image_header(layout.first_image())
    if image_size is not None:
        size = [image_size] * 2 if isinstance(image_size, int) else list(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
            raise DataError(f"data.image_size={image_size!r} is not allowed: one size in pixels (28), [height, width], or null.")
        height, width = size
    if channels is None:
        channels = 1 if mode in GREY_MODES else 3
    return channels, height, width


def declare(root: str, image_size: int | list[int] | None = None, channels: int | None = None, **_) -> Declared:
    layout = scan(str(root))
    count = len(layout.class_names)
    if count < 2:
        raise DataError(f"data.root={root} has one class folder ({layout.class_names[0]}): a classifier needs two "
                        f"or more ({LAYOUT}).")
    return Declared(input_shape=image_shape(layout, image_size, channels),
                    target_kind="binary" if count == 2 else "multiclass", num_classes=count,
                    class_names=layout.class_names)
