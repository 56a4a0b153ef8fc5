"""Data modules: one file per dataset, plus the shared in-memory batching."""

from datamodules.augment import BatchAugment
from datamodules.batching import BatchIndexSampler, InMemoryDataModule, TensorBatches
from datamodules.fashion_mnist import FashionMNISTDataModule, FashionMNISTUnavailable
from datamodules.regression import RegressionDataModule
from datamodules.xor import XORDataModule

__all__ = [
    "BatchAugment", "BatchIndexSampler", "FashionMNISTDataModule", "FashionMNISTUnavailable",
    "InMemoryDataModule", "RegressionDataModule", "TensorBatches", "XORDataModule",
]
