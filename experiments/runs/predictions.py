"""``predictions.csv``: one row per sample, its target beside the prediction (experiments/predict.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


def write_predictions(path: Path, predictions: torch.Tensor, targets: torch.Tensor, classification: bool,
                      class_names: list[str] | None = None) -> Path:
    """Classification: the target and predicted class names and each class's probability;
    regression: each target value beside each predicted value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if classification:
            names = class_names or [str(i) for i in range(predictions.shape[1])]
            writer.writerow(["index", "target", "predicted", *[f"p[{n}]" for n in names]])
            for i, (t, p) in enumerate(zip(targets.tolist(), predictions.tolist())):
                writer.writerow([i, names[t], names[max(range(len(p)), key=p.__getitem__)], *[f"{v:.5f}" for v in p]])
        else:
            width = predictions.shape[1]
            writer.writerow(["index", *[f"target[{j}]" for j in range(width)], *[f"pred[{j}]" for j in range(width)]])
            for i, (t, p) in enumerate(zip(targets.tolist(), predictions.tolist())):
                writer.writerow([i, *[f"{v:.6g}" for v in t], *[f"{v:.6g}" for v in p]])
    return path
