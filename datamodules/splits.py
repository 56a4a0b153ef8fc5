"""A seeded split of samples into train, val and test, for data that comes without one (an image
folder without val/ or test/, a CSV file). Plain Python: a function of the labels, fractions and
seed alone, so every call (``setup`` run twice, a resumed run, an evaluation) gives the same split
and no sample is in two parts."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datamodules.contract import DataError
from lightning_modules.atomic_files import write_atomic

SPLITS = ("train", "val", "test")
SPLIT_FILE = "data_split.json"  # in the run folder: which samples went where


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise DataError(f"data.{name}={value!r} is not allowed: give a fraction in [0, 1), e.g. 0.1.")
    if val_fraction + test_fraction >= 1:
        raise DataError(f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} leave nothing to "
                        "train on: keep their sum below 1.")


def seeded_split(count: int, val_fraction: float, test_fraction: float, seed: int,
                 labels: Sequence[int] | None = None) -> dict[str, list[int]]:
    """Indices ``0..count-1`` in three disjoint sorted lists. With ``labels`` the split is
    stratified: each class's indices are shuffled (``random.Random(seed)``) and cut, the first
    ``round(n * val_fraction)`` to val, the next ``round(n * test_fraction)`` to test, the rest
    to train; without, all indices are one class."""
    check_fractions(val_fraction, test_fraction)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(labels[i] if labels is not None else 0, []).append(i)
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    rng = random.Random(seed)
    for label in sorted(groups):
        members = groups[label]
        rng.shuffle(members)
        n_val, n_test = round(len(members) * val_fraction), round(len(members) * test_fraction)
        parts["val"] += members[:n_val]
        parts["test"] += members[n_val:n_val + n_test]
        parts["train"] += members[n_val + n_test:]
    return {s: sorted(v) for s, v in parts.items()}


def write_split_record(trainer: Any, record: Mapping[str, Any]) -> None:
    """``data_split.json`` in the run's folder (the trainer's ``default_root_dir``), by rank 0."""
    if trainer is None or not trainer.is_global_zero or not trainer.default_root_dir:
        return
    write_atomic(Path(trainer.default_root_dir) / SPLIT_FILE, (json.dumps(record, indent=1) + "\n").encode())
