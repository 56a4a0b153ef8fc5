"""Small data sets of a user's own, written on the fly: a folder of PNGs in the ImageFolder layout
and CSV tables, each learnable (the class shows in the image; the target follows the features)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import torch
from torchvision.io import encode_png

SPECIES = ("adelie", "chinstrap", "gentoo")


def write_image_folder(root: Path, classes: int = 3, per_class: int = 100, size: int = 16, rgb: bool = False,
                       parts: tuple[str, ...] = ()) -> Path:
    """``root/<class>/<i>.png`` (or ``root/<part>/<class>/<i>.png`` for each of ``parts``): noise with a
    bright bar whose row is the class."""
    g = torch.Generator().manual_seed(0)
    for part in parts or ("",):
        for k in range(classes):
            folder = root / part / f"class_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class // max(1, len(parts)) if parts else per_class):
                image = torch.randint(0, 60, (3 if rgb else 1, size, size), dtype=torch.uint8, generator=g)
                row = 1 + k * max(1, (size - 2) // classes)
                image[:, row:row + 2, 2:size - 2] = 255
                (folder / f"{i:04d}.png").write_bytes(encode_png(image).numpy().tobytes())
    return root


def write_table(path: Path, rows: int = 300, target: str = "price") -> Path:
    """Five features x1..x5 on very different scales and a target: ``price`` (a linear function of
    them plus noise: regression) or ``species`` (words, decided by two of them: classification)."""
    rng = random.Random(0)
    scales = (1.0, 100.0, 0.01, 10.0, 1000.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x1", "x2", "x3", "x4", "x5", target])
        for _ in range(rows):
            z = [rng.gauss(0, 1) for _ in scales]
            x = [f"{v * s:.5g}" for v, s in zip(z, scales)]
            if target == "species":
                score = z[0] + z[1]
                label = SPECIES[0] if score < -0.5 else SPECIES[1] if score < 0.5 else SPECIES[2]
            else:
                label = f"{3 * z[0] - 2 * z[1] + z[2] + 0.1 * rng.gauss(0, 1):.5g}"
            writer.writerow([*x, label])
    return path
