"""A table of features and targets from a CSV (or Parquet) file (datamodules/tables.py), held in
memory as whole-tensor batches: classification (labels that are words or whole numbers; the
class names are the labels) or regression (one or more target columns).

The split is seeded (stratified by class for classification). The standardisation of the
features, each one's mean and std over the training rows only, is applied to each batch on the
device; it and the split are the data module's state, saved by Lightning in every checkpoint
(plain lists of floats and row numbers), so evaluate, predict and export apply the training
run's transform, and the contract's ``normalization`` tells an exported model's user the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from datamodules import tables
from datamodules.batching import InMemoryDataModule
from datamodules.splits import SPLITS, check_fractions, seeded_split, write_split_record


class CSVDataModule(InMemoryDataModule):
    """``target``: the target column (a list of columns for a regression with several targets);
    ``features``: the feature columns (default: every other column); ``task``: null (from the
    target's values), classification or regression."""

    def __init__(
        self,
        path: str,
        target: str | list[str],
        features: list[str] | None = None,
        task: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 42,
        standardize: bool = True,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        on_device: bool = False,
    ):
        super().__init__(batch_size, eval_batch_size, on_device)
        check_fractions(val_fraction, test_fraction)
        self.path, self.target, self.features, self.task = str(path), target, features, task
        declared = self.table().declared()
        self.input_shape, self.target_kind = declared.input_shape, declared.target_kind
        self.num_classes, self.target_dim, self.class_names = declared.num_classes, declared.target_dim, declared.class_names
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.standardize = standardize
        self.rows: dict[str, list[int]] | None = None  # each part's rows (0 is the first under the header)
        self._on_device: tuple[torch.device, torch.Tensor, torch.Tensor] | None = None

    def table(self) -> tables.Table:
        return tables.read_table(self.path, self.target, self.features, self.task)

    def load_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        table = self.table()
        if self.rows is None:
            self.rows = seeded_split(len(table), self.val_fraction, self.test_fraction, self.split_seed, table.labels)
            write_split_record(self.trainer, self.split_record(len(table)))
        x = torch.tensor(table.features, dtype=torch.float32)
        y = (torch.tensor(table.labels, dtype=torch.long) if table.labels is not None
             else torch.tensor(table.values, dtype=torch.float32))
        splits = {part: (x[self.rows[part]], y[self.rows[part]]) for part in SPLITS}
        if self.standardize and self.normalization is None:
            train = splits["train"][0]
            std = train.std(dim=0, correction=0) if len(train) > 1 else torch.ones(train.shape[1])
            self.normalization = {"scale": 1.0, "mean": train.mean(dim=0).tolist(),
                                  "std": torch.where(std > 0, std, torch.ones_like(std)).tolist()}
        return splits

    def split_record(self, row_count: int) -> dict[str, Any]:
        return {"path": str(Path(self.path).expanduser().resolve()), "rows": row_count,
                "splits": {part: list(rows) for part, rows in self.rows.items()},
                "note": "rows are numbered from 0, the first row under the header"}

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.normalization is None:
            return batch
        x = batch[0]
        if self._on_device is None or self._on_device[0] != x.device:
            mean = torch.tensor(self.normalization["mean"], device=x.device)
            std = torch.tensor(self.normalization["std"], device=x.device)
            self._on_device = (x.device, mean, std)
        _, mean, std = self._on_device
        return ((x - mean) / std, *batch[1:])

    # -- saved in every checkpoint by Lightning

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(super().state_dict())
        if self.rows is not None:
            state["split"] = {"rows": len(self.table()), **{part: list(rows) for part, rows in self.rows.items()}}
        if self.normalization is not None:
            state["normalization"] = dict(self.normalization)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "normalization" in state:  # the training rows' statistics, whatever file this is
            self.normalization, self._on_device = dict(state["normalization"]), None
        split = state.get("split")
        if split and split["rows"] == len(self.table()):  # the file trained on: its split
            rows = {part: [int(i) for i in split[part]] for part in SPLITS}
            if rows != self.rows:
                self.rows, self.splits = rows, {}
                write_split_record(self.trainer, self.split_record(split["rows"]))
