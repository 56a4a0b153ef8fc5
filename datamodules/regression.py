"""Synthetic regression data. Each generator returns all points; ``RegressionDataModule``
splits them."""

import torch

from datamodules.batching import InMemoryDataModule
from datamodules.declarations import RANDOM_DEFAULTS
from datamodules.declarations import regression as declare


def linear(g: torch.Generator, weight: float = 0.7, bias: float = 0.3, start: float = 0.0,
           end: float = 1.0, step: float = 0.02):
    """y = weight * x + bias on an evenly spaced grid (no noise)."""
    x = torch.arange(start, end, step).unsqueeze(1)
    return x, weight * x + bias


def noisy(g: torch.Generator, num_samples: int = 200, x_scale: float = 10.0, noise_std: float = 3.0):
    """x = 10 N(0,1), y = x + 3 N(0,1)."""
    x = x_scale * torch.randn(num_samples, 1, generator=g)
    return x, x + noise_std * torch.randn(num_samples, 1, generator=g)


def random(g: torch.Generator, num_samples: int = RANDOM_DEFAULTS["num_samples"],
           in_features: int = RANDOM_DEFAULTS["in_features"], out_features: int = RANDOM_DEFAULTS["out_features"]):
    """x and y both N(0,1): nothing to generalise, only to fit."""
    return (torch.randn(num_samples, in_features, generator=g),
            torch.randn(num_samples, out_features, generator=g))


GENERATORS = {"linear": linear, "noisy": noisy, "random": random}


class RegressionDataModule(InMemoryDataModule):
    """Points from one of ``GENERATORS``, split in order: the first ``train_fraction`` train,
    the rest held out (used as both val and test, as in the tutorials).

    ``random`` is a fitting exercise: ``train_fraction`` is ignored and val/test are the
    training points themselves.
    """

    target_kind = "regression"

    def __init__(
        self,
        generator: str = "linear",
        generator_kwargs: dict | None = None,
        train_fraction: float = 0.8,
        shuffle_points: bool = False,
        seed: int = 42,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        on_device: bool = False,
    ):
        super().__init__(batch_size, eval_batch_size, on_device)
        declared = declare(generator, generator_kwargs)  # an unknown generator: one paragraph
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        self.generator = generator
        self.generator_kwargs = dict(generator_kwargs or {})
        self.train_fraction = train_fraction
        self.shuffle_points = shuffle_points
        self.seed = seed
        self.input_shape, self.target_dim = declared.input_shape, declared.target_dim

    def load_splits(self):
        g = torch.Generator().manual_seed(self.seed)
        x, y = GENERATORS[self.generator](g, **self.generator_kwargs)
        if self.generator == "random":
            return {"train": (x, y), "val": (x, y), "test": (x, y)}
        if self.shuffle_points:
            perm = torch.randperm(len(x), generator=g)
            x, y = x[perm], y[perm]
        n_train = int(round(self.train_fraction * len(x)))
        held_out = (x[n_train:], y[n_train:]) if n_train < len(x) else (x, y)
        return {"train": (x[:n_train], y[:n_train]), "val": held_out, "test": held_out}
