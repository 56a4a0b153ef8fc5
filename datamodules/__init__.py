"""Data modules: one file per dataset, the shared in-memory batching, and the contract every data
module keeps (contract.py).

The classes load on first use (``datamodules.XORDataModule``, as the configs name them), so that
reading ``datamodules.contract`` or ``datamodules.declarations`` imports no torch."""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "BatchAugment": "augment", "BatchIndexSampler": "batching", "InMemoryDataModule": "batching",
    "TensorBatches": "batching", "CSVDataModule": "csv_data", "FashionMNISTDataModule": "fashion_mnist",
    "FashionMNISTUnavailable": "fashion_mnist", "ImageDataModule": "images", "ImageFolderDataModule": "image_folder",
    "RegressionDataModule": "regression", "XORDataModule": "xor",
}
__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"datamodules.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
