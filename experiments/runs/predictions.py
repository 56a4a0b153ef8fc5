"""``predictions.csv``: one row per sample, its target beside the prediction (experiments/predict.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


def write_predictions(path: Path, predictions: torch.Tensor, targets: torch.Tensor | None, classification: bool,
                      class_names: list[str] | None = None) -> Path:
    """Classification: the target and predicted class names and each class's probability;
    regression: each target value beside each predicted value. ``targets`` come from the same
    batches as the predictions (None: the data has none, and the file has no target columns)."""
    if targets is not None and len(targets) != len(predictions):
        raise RuntimeError(f"{len(predictions)} predictions but {len(targets)} targets: the predict step must "
                           "return a batch's predictions with that batch's targets")
    path.parent.mkdir(parents=True, exist_ok=True)
    given = targets is not None
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if classification:
            names = list(class_names or [str(i) for i in range(predictions.shape[1])])
            writer.writerow(["index", *(["target"] if given else []), "predicted", *[f"p[{n}]" for n in names]])
            target_names = [[names[t]] for t in targets.tolist()] if given else [[]] * len(predictions)
            for i, (t, p) in enumerate(zip(target_names, predictions.tolist())):
                writer.writerow([i, *t, names[max(range(len(p)), key=p.__getitem__)], *[f"{v:.5f}" for v in p]])
        else:
            predictions = predictions.reshape(len(predictions), -1)
            width = predictions.shape[1]
            writer.writerow(["index", *([f"target[{j}]" for j in range(width)] if given else []),
                             *[f"pred[{j}]" for j in range(width)]])
            values = targets.reshape(len(targets), -1).tolist() if given else [[]] * len(predictions)
            for i, (t, p) in enumerate(zip(values, predictions.tolist())):
                writer.writerow([i, *[f"{v:.6g}" for v in t], *[f"{v:.6g}" for v in p]])
    return path
