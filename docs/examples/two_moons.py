"""A plain LightningDataModule of a user's own: DataLoaders over TensorDatasets of two
interleaved half-moons, declaring what the project's data contract asks and nothing else
(README: Your own data and model; conf/data/two_moons.yaml)."""

import math

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class TwoMoons(L.LightningDataModule):
    # The data contract: declared before any data loads.
    input_shape = (2,)
    target_kind = "binary"
    num_classes = 2
    class_names = ("upper", "lower")

    def __init__(self, samples: int = 1000, noise: float = 0.1, seed: int = 0, batch_size: int = 64):
        super().__init__()
        self.samples, self.noise, self.seed, self.batch_size = samples, noise, seed, batch_size

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(self.seed)  # the same points however often setup runs
        y = torch.randint(0, 2, (self.samples,), generator=g)
        angle = torch.rand(self.samples, generator=g) * math.pi
        x = torch.stack([torch.cos(angle) + y, torch.sin(angle) * (1 - 2 * y) + 0.5 * y], dim=1)
        x = x + self.noise * torch.randn(self.samples, 2, generator=g)
        n_val = n_test = self.samples // 5
        self.parts = {"val": TensorDataset(x[:n_val], y[:n_val]),
                      "test": TensorDataset(x[n_val:n_val + n_test], y[n_val:n_val + n_test]),
                      "train": TensorDataset(x[n_val + n_test:], y[n_val + n_test:])}

    def train_dataloader(self):
        return DataLoader(self.parts["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.parts["val"], batch_size=256)

    def test_dataloader(self):
        return DataLoader(self.parts["test"], batch_size=256)
