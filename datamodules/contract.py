"""The contract between a data module and the rest of the project (README: Your own data and model).

A data module satisfies it by its attributes alone: a plain ``LightningDataModule`` of your own
with DataLoaders is enough. Every consumer (the configs' ``${from_data:...}`` links, the pairing
check, the pictures, evaluate, predict, export) reads a data module only through
``declared(datamodule)``, never through fields of this project's own classes.

What a data module declares before any data loads (class attributes, or set in ``__init__``):

- ``input_shape``: the shape of one sample's input as the model receives it (after
  ``on_after_batch_transfer``): ``(1, 28, 28)`` for a grey image, ``(5,)`` for five features;
- ``target_kind``: ``"binary"``, ``"multiclass"`` or ``"regression"``;
- ``num_classes`` (binary: 2; multiclass) or ``target_dim`` (regression: values per sample);
- ``class_names`` (optional): one name per class, in the order of the class indices;
- ``normalization`` (optional; may be set once the data is set up): how a raw input becomes the
  model's input, ``{"scale": s, "mean": [...], "std": [...]}`` meaning ``(raw * s - mean) / std``
  per channel (images) or per feature (tables).

Its batches: ``(x, y, ...)``, ``x`` a float tensor ``(N, *input_shape)`` once
``on_after_batch_transfer`` has run, ``y`` int64 class indices ``(N,)`` (binary, multiclass) or
float ``(N, target_dim)`` (regression); its loaders are ``train_dataloader``, ``val_dataloader``
and ``test_dataloader``; optionally ``ordered_dataloader(split)``, a split's loader in its
stored order (prediction asks for it: a training loader may shuffle). What a task module's steps
return is in lightning_modules/task.py.

Plain Python: the configs' checks read it before torch is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TARGET_KINDS = ("binary", "multiclass", "regression")
SECTION = "README: Your own data and model"

FIELDS = {  # what each field is, as a data module that lacks it is told
    "input_shape": "the shape of one sample's input as the model receives it, e.g. (1, 28, 28) or (5,)",
    "target_kind": "the kind of target: 'binary', 'multiclass' or 'regression'",
    "num_classes": "the number of classes (2 for binary targets)",
    "target_dim": "the number of target values per sample",
    "class_names": "one name per class, in the order of the class indices",
    "normalization": "{'scale': s, 'mean': [...], 'std': [...]}: the model's input is (raw * s - mean) / std",
}


class DataContract(Protocol):
    """What a data module declares (``class_names`` and ``normalization`` may be absent or None)."""

    input_shape: Sequence[int]
    target_kind: str
    num_classes: int | None
    target_dim: int | None
    class_names: Sequence[str] | None
    normalization: Mapping[str, Any] | None


class ContractError(ValueError):
    """A data module that does not declare what the contract asks: one paragraph naming the field."""


class DataError(ValueError):
    """Data that cannot be used as configured (a column that is not there, an empty folder): one paragraph."""


@dataclass(frozen=True)
class Declared:
    """The contract's values, as read from a data module or computed from its config."""

    input_shape: tuple[int, ...]
    target_kind: str
    num_classes: int | None = None
    target_dim: int | None = None
    class_names: tuple[str, ...] | None = None
    normalization: Mapping[str, Any] | None = None

    @property
    def classification(self) -> bool:
        return self.target_kind != "regression"

    @property
    def num_outputs(self) -> int:
        """What a net gives per sample for this data: one logit (binary), a logit per class, or the targets."""
        if self.target_kind == "binary":
            return 1
        return int(self.num_classes if self.classification else self.target_dim)

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    def targets_in_words(self) -> str:
        if self.target_kind == "regression":
            return f"regression targets ({self.target_dim} value{'s' if self.target_dim != 1 else ''} per sample)"
        return f"{self.target_kind} targets ({self.num_classes} classes)"


def declared(datamodule: Any) -> Declared:
    """The contract's values of ``datamodule``, checked; a ContractError names the first field
    that is missing or wrong."""
    name = type(datamodule).__name__

    def refuse(field: str, what: str) -> ContractError:
        return ContractError(f"{name} {what}; the data contract asks every data module for {field}: {FIELDS[field]}. "
                             f"Declare it as a class attribute or in __init__, before any data loads ({SECTION}).")

    for field in ("input_shape", "target_kind"):
        if getattr(datamodule, field, None) is None:
            raise refuse(field, f"does not declare {field}")
    shape, kind = datamodule.input_shape, datamodule.target_kind
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise refuse("input_shape", f"declares input_shape={shape!r}")
    if kind not in TARGET_KINDS:
        raise refuse("target_kind", f"declares target_kind={kind!r}")
    width = "target_dim" if kind == "regression" else "num_classes"
    count = getattr(datamodule, width, None)
    if count is None:
        raise refuse(width, f"has {kind} targets but does not declare {width}")
    least = 1 if kind == "regression" else 2
    if isinstance(count, bool) or not isinstance(count, int) or count < least or (kind == "binary" and count != 2):
        raise refuse(width, f"declares {width}={count!r} for {kind} targets")
    names = getattr(datamodule, "class_names", None)
    if names is not None and kind == "regression":
        raise refuse("class_names", "declares class_names for regression targets, which have no classes")
    if names is not None and len(names) != count:
        raise refuse("class_names", f"declares {len(names)} class names for {count} classes")
    normalization = getattr(datamodule, "normalization", None)
    if normalization is not None and not (isinstance(normalization, Mapping) and {"mean", "std"} <= set(normalization)):
        raise refuse("normalization", f"declares normalization={normalization!r}")
    return Declared(
        input_shape=tuple(shape), target_kind=kind,
        num_classes=count if kind != "regression" else None, target_dim=count if kind == "regression" else None,
        class_names=tuple(str(n) for n in names) if names is not None else None,
        normalization=dict(normalization) if normalization is not None else None)


def split_loader(datamodule: Any, split: str) -> Any:
    """The loader of ``split`` (train, val or test) in its order: the data module's own
    ``ordered_dataloader(split)`` when it has one (a training loader shuffles), else its
    ``<split>_dataloader()``."""
    ordered = getattr(datamodule, "ordered_dataloader", None)
    return ordered(split) if callable(ordered) else getattr(datamodule, f"{split}_dataloader")()
