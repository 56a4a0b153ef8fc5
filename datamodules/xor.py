import torch

from datamodules.batching import InMemoryDataModule
from datamodules.declarations import XOR


def make_xor(size: int, std: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners of the unit square with Gaussian noise; label = x1 xor x2."""
    corners = torch.randint(0, 2, (size, 2), generator=generator).float()
    labels = (corners.sum(dim=1) == 1).long()
    points = corners + std * torch.randn(size, 2, generator=generator)
    return points, labels


class XORDataModule(InMemoryDataModule):
    """Continuous XOR: three independently drawn splits from one seeded generator."""

    input_shape = XOR.input_shape
    target_kind = XOR.target_kind
    num_classes = XOR.num_classes
    class_names = XOR.class_names

    def __init__(
        self,
        train_size: int = 1000,
        val_size: int = 500,
        test_size: int = 500,
        std: float = 0.1,
        seed: int = 42,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        on_device: bool = False,
    ):
        super().__init__(batch_size, eval_batch_size, on_device)
        for name, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.std = std
        self.seed = seed

    def load_splits(self):
        g = torch.Generator().manual_seed(self.seed)
        return {split: make_xor(size, self.std, g) for split, size in self.sizes.items()}
