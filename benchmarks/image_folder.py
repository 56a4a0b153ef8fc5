"""An image folder against the in-memory data set it was made from: Fashion-MNIST written as 70,000
PNGs (``train/<class>/``, ``test/<class>/``), trained with ``data=image_folder`` and with
``data=fashion``, same model and batches, one after the other in one process (``--repeats``
pairs, alternating). Reports the time of an epoch after the first (the target: the image folder
within 1.2x of ``data=fashion``), the first epoch's, and the decoding of the PNGs (in ``setup``,
before the first epoch).

    python benchmarks/image_folder.py                      # 5 pairs, model=cnn
    python benchmarks/image_folder.py --repeats 5 --model mlp --json out.json
    python benchmarks/run.py --only image_folder --publish   # the same, into benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import framework_epoch, framework_warmup, median  # noqa: E402

# Fashion-MNIST's 5000 validation images of 60000, carved the same way by both.
VAL_FRACTION = 5000 / 60000
# The bar: an epoch from the PNGs within 1.2x of one from data=fashion.
MAX_RATIO = 1.2


def write_pngs(raw_dir: Path, root: Path) -> float:
    """Fashion-MNIST as PNGs in the ImageFolder layout; returns the seconds it took."""
    from torchvision.datasets import FashionMNIST
    from torchvision.io import encode_png

    from datamodules.fashion_mnist import ensure_raw_files

    started = time.perf_counter()
    ensure_raw_files(raw_dir, download=False)
    for part, train in (("train", True), ("test", False)):
        data = FashionMNIST(str(raw_dir), train=train, download=False)
        names = [name.replace("/", "_") for name in data.classes]  # T-shirt/top: a folder name
        for name in names:
            (root / part / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(data.data, data.targets.tolist())):
            png = encode_png(image.unsqueeze(0).contiguous(), compression_level=1)
            (root / part / names[label] / f"{i:05d}.png").write_bytes(png.numpy().tobytes())
    return time.perf_counter() - started


def decode_seconds(root: Path) -> float:
    """The decoding of every PNG by the data module's threads (what its setup spends)."""
    from datamodules.image_folder import ImageFolderDataModule

    datamodule = ImageFolderDataModule(str(root), val_fraction=VAL_FRACTION)
    datamodule.setup("fit")
    return float(datamodule.decode_s)


def run(repeats: int = 5, model: str = "cnn", folder: str | None = None, log=print) -> list[dict[str, Any]]:
    """The two rows of the section (benchmarks/run.py ``--only image_folder``): data=fashion, then
    data=image_folder with its pair ratio to it and the decoding of its PNGs."""
    with tempfile.TemporaryDirectory(prefix="image-folder-bench-") as tmp:
        work = Path(tmp)
        root = Path(folder) if folder else work / "pngs"
        written = None if (root / "train").is_dir() else write_pngs(work / "raw", root)
        common = [f"model={model}", "trainer.enable_progress_bar=false", "logger=none", "callbacks=none"]
        cases = {
            "fashion": [*common, "data=fashion", f"data.data_dir={work / 'raw'}"],
            "image_folder": [*common, "data=image_folder", f"data.root={root}", f"data.val_fraction={VAL_FRACTION}"],
        }
        for overrides in cases.values():
            framework_warmup(overrides, work)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for r in range(repeats):
            for name, overrides in cases.items():
                framework_epoch(overrides, work, epochs=2)
                from benchmarks.timing import EpochTimer

                first, second = EpochTimer.records[-2], EpochTimer.records[-1]
                rows[name].append({"first_epoch_s": first["epoch_s"], "epoch_s": second["epoch_s"]})
            log(f"image folder pair #{r}: fashion {rows['fashion'][-1]['epoch_s']:.2f} s, "
                f"image folder {rows['image_folder'][-1]['epoch_s']:.2f} s")
        decode = [decode_seconds(root) for _ in range(repeats)]

    pairs = [b["epoch_s"] / a["epoch_s"] for a, b in zip(rows["fashion"], rows["image_folder"])]
    out = [{"data": f"data={name}", "model": model, "repeats": repeats,
            "epoch_s": median([r["epoch_s"] for r in rows[name]]),
            "first_epoch_s": median([r["first_epoch_s"] for r in rows[name]])} for name in cases]
    fastest = min(r["epoch_s"] for r in rows["image_folder"]) / min(r["epoch_s"] for r in rows["fashion"])
    out[1].update(pair_ratio=median(pairs), pair_ratios=pairs, ratio_of_minimums=fastest,
                  decode_s=median(decode), decode_runs_s=decode,
                  pngs_written_s=written, ok=median(pairs) <= MAX_RATIO)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--folder", help="write (or reuse) the PNG folder here instead of a temporary one")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    fashion, folder = run(args.repeats, args.model, args.folder)
    print(f"model={args.model}, epoch after the first, median of {args.repeats} pairs:")
    print(f"  data=fashion        {fashion['epoch_s']:.2f} s")
    print(f"  data=image_folder   {folder['epoch_s']:.2f} s   pair ratio {folder['pair_ratio']:.3f} "
          f"({', '.join(f'{p:.3f}' for p in folder['pair_ratios'])}; target <= {MAX_RATIO}), "
          f"ratio of the fastest epochs {folder['ratio_of_minimums']:.3f}")
    print(f"  first epoch: fashion {fashion['first_epoch_s']:.2f} s, image folder {folder['first_epoch_s']:.2f} s; "
          f"decoding the 70,000 PNGs (setup, before it): {folder['decode_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([fashion, folder], indent=2) + "\n")
    return 0 if folder["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
