"""What each of this project's data modules declares (datamodules/contract.py), computed from its
config alone, without torch: the model configs' ``${from_data:...}`` links and the pairing check
read it before anything heavy is imported, so a model that cannot take the data is one paragraph
in a second. Each data module sets its own fields from the same values and functions.

A data module of your own needs nothing here: its contract is read from the module itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from datamodules import folder_layout, tables
from datamodules.contract import DataError, Declared

XOR = Declared(input_shape=(2,), target_kind="binary", num_classes=2, class_names=("0", "1"))

FASHION = Declared(
    input_shape=(1, 28, 28), target_kind="multiclass", num_classes=10,
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    normalization={"scale": 1 / 255, "mean": [0.2860], "std": [0.3530]},  # of the 60k training images
)

# The generators of datamodules/regression.py: (input width, target width) from their arguments.
RANDOM_DEFAULTS = {"num_samples": 64, "in_features": 1000, "out_features": 10}
GENERATOR_WIDTHS: dict[str, Callable[..., tuple[int, int]]] = {
    "linear": lambda **_: (1, 1),
    "noisy": lambda **_: (1, 1),
    "random": lambda **kw: ({**RANDOM_DEFAULTS, **kw}["in_features"], {**RANDOM_DEFAULTS, **kw}["out_features"]),
}


def regression(generator: str = "linear", generator_kwargs: Mapping[str, Any] | None = None, **_) -> Declared:
    if generator not in GENERATOR_WIDTHS:
        raise DataError(f"data.generator={generator!r} is unknown; allowed: {sorted(GENERATOR_WIDTHS)}")
    width_in, width_out = GENERATOR_WIDTHS[generator](**dict(generator_kwargs or {}))
    return Declared(input_shape=(int(width_in),), target_kind="regression", target_dim=int(width_out))


BY_TARGET: dict[str, Callable[..., Declared]] = {
    "datamodules.XORDataModule": lambda **_: XOR,
    "datamodules.FashionMNISTDataModule": lambda **_: FASHION,
    "datamodules.RegressionDataModule": regression,
    "datamodules.ImageFolderDataModule": folder_layout.declare,
    "datamodules.CSVDataModule": tables.declare,
}


def of_config(data: Mapping[str, Any]) -> Declared | None:
    """What the data module a (resolved) data config builds declares; None for a class that is
    not this project's (its contract is read from the module itself)."""
    declare = BY_TARGET.get(str(data.get("_target_")))
    if declare is None:
        return None
    return declare(**{k: v for k, v in data.items() if not (k.startswith("_") and k.endswith("_"))})
