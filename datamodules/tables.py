"""A table of features and targets read from a CSV file (or Parquet, with pyarrow), checked and
turned into numbers without torch: the target columns say the task (labels that are words or
whole numbers: classification; other numbers: regression), every other column is a feature unless
``features`` names them. A column that is not there, a feature that is not a number or an empty
cell is one paragraph listing the columns."""

from __future__ import annotations

import csv
import difflib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamodules.contract import DataError, Declared

TASKS = (None, "classification", "regression")


@dataclass(frozen=True)
class Table:
    """The numbers of a table: ``features`` (row-major floats) and ``labels`` (class indices) or
    ``values`` (row-major floats), with the names of the columns they came from."""

    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    target_kind: str
    class_names: tuple[str, ...] | None
    features: list[list[float]]
    labels: list[int] | None
    values: list[list[float]] | None

    def __len__(self) -> int:
        return len(self.features)

    def declared(self) -> Declared:
        kind = self.target_kind
        return Declared(input_shape=(len(self.feature_names),), target_kind=kind,
                        num_classes=len(self.class_names) if self.class_names else None,
                        target_dim=len(self.target_names) if kind == "regression" else None,
                        class_names=self.class_names)


def read_columns(path: Path) -> dict[str, list[Any]]:
    """Each column's cells, in file order: strings from a CSV, Python values from Parquet."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise DataError(f"data.path={path}: reading Parquet needs pyarrow, which is not installed here "
                            "(pip install pyarrow), or save the table as a CSV file.") from None
        return parquet.read_table(path).to_pydict()
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(f"data.path={path} is empty: give a CSV file whose first line names the columns.")
    header, body = rows[0], [r for r in rows[1:] if r]
    ragged = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if ragged is not None:
        raise DataError(f"data.path={path}, line {ragged + 2}: {len(body[ragged])} cells where the header names "
                        f"{len(header)} columns ({', '.join(header)}).")
    return {name: [r[j] for r in body] for j, name in enumerate(header)}


def _number(cell: Any) -> float | None:
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, (int, float)):
        return float(cell)
    try:
        return float(cell)
    except ValueError:
        return None


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def _unknown(path: Path, setting: str, name: str, columns: list[str]) -> DataError:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else ""
    return DataError(f"{setting}: {path} has no column {name!r}.{hint} Its columns: {', '.join(columns)}.")


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int, target: tuple[str, ...], features: tuple[str, ...] | None,
          task: str | None) -> Table:
    file = Path(path)
    columns = read_columns(file)
    names = list(columns)
    for name in target:
        if name not in columns:
            raise _unknown(file, f"data.target={name}", name, names)
    for name in features or ():
        if name not in columns:
            raise _unknown(file, f"data.features=[..., {name}, ...]", name, names)
    feature_names = list(features) if features is not None else [n for n in names if n not in target]
    overlap = [n for n in feature_names if n in target]
    if overlap:
        raise DataError(f"data.features names the target column {overlap[0]}: a target cannot be a feature.")
    if not feature_names:
        raise DataError(f"{file} has no feature columns beside the target ({', '.join(target)}). Its columns: "
                        f"{', '.join(names)}.")
    rows = len(columns[names[0]])
    if rows < 3:
        raise DataError(f"{file} has {rows} rows: too few to split into train, val and test.")
    for name in [*feature_names, *target]:
        empty = next((i for i, cell in enumerate(columns[name]) if cell is None or cell == ""), None)
        if empty is not None:
            raise DataError(f"{file}, row {empty + 1}: column {name} is empty. Fill or remove the rows with empty "
                            "cells.")
    text = [n for n in feature_names if any(_number(c) is None for c in columns[n])]
    if text:
        cell = next(c for c in columns[text[0]] if _number(c) is None)
        raise DataError(f"{file}: the feature column{'s' if len(text) > 1 else ''} {', '.join(text)} hold"
                        f"{'' if len(text) > 1 else 's'} values that are not numbers (e.g. {cell!r}). Features must be "
                        f"numbers: leave text columns out with data.features=[...] (the numeric columns: "
                        f"{', '.join(n for n in feature_names if n not in text)}), or encode them as numbers.")
    features_by_row = [list(r) for r in zip(*([_number(c) for c in columns[n]] for n in feature_names))]
    if task not in TASKS:
        raise DataError(f"data.task={task!r} is not allowed: classification, regression or null (decided by the "
                        "target: words or whole numbers are classes, other numbers are regression targets).")
    numbers = {n: [_number(c) for c in columns[n]] for n in target}
    whole = all(v is not None and float(v).is_integer() for n in target for v in numbers[n])
    is_text = any(v is None for n in target for v in numbers[n])
    if task == "regression" and is_text:
        name = next(n for n in target if any(v is None for v in numbers[n]))
        raise DataError(f"data.task=regression: the target column {name} holds values that are not numbers "
                        f"(e.g. {next(c for c in columns[name] if _number(c) is None)!r}).")
    classes = task == "classification" or (task is None and (is_text or whole) and len(target) == 1)
    if classes and len(target) > 1:
        raise DataError(f"data.task=classification takes one target column, got {len(target)} "
                        f"({', '.join(target)}).")
    if not classes:
        values = [list(r) for r in zip(*(numbers[n] for n in target))]
        return Table(tuple(feature_names), target, "regression", None, features_by_row, None, values)
    cells = columns[target[0]]
    keys = [str(int(v)) if v is not None and not is_text else str(c) for c, v in zip(cells, numbers[target[0]])]
    distinct = set(keys)
    order = sorted(distinct, key=lambda k: (float(k), k)) if not is_text else sorted(distinct)
    if len(order) < 2:
        raise DataError(f"data.target={target[0]}: every row has the class {order[0]!r}; a classifier needs two or more.")
    index = {k: i for i, k in enumerate(order)}
    return Table(tuple(feature_names), target, "binary" if len(order) == 2 else "multiclass", tuple(order),
                 features_by_row, [index[k] for k in keys], None)


def read_table(path: str, target: str | list[str], features: list[str] | None = None, task: str | None = None) -> Table:
    """The table of ``path`` (cached while the file is unchanged)."""
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise DataError(f"data.path={path}: no such file. Give a CSV file (or .parquet) whose first line names "
                        "the columns.")
    targets = tuple(_as_list(target))
    if not targets:
        raise DataError("data.target is required: the name of the target column (or a list of them).")
    stat = os.stat(file)
    return _read(str(file.resolve()), stat.st_mtime_ns, stat.st_size, targets,
                 tuple(_as_list(features)) if features is not None else None, task)


def declare(path: str, target: str | list[str], features: list[str] | None = None, task: str | None = None,
            **_) -> Declared:
    return read_table(path, target, features, task).declared()
