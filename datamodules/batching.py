"""Whole-tensor batching for data that fits in memory.

A ``DataLoader`` over a map-style dataset calls ``__getitem__`` once per sample and then
collates; for small in-memory datasets that Python work costs more than the model. Here a
batch is one indexing operation (``tensor[idx]``) per tensor, done where the tensors live
(CPU, or the GPU when the data module puts the data there).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from lightning import LightningDataModule
from torch import Tensor


class BatchIndexSampler:
    """Yields index tensors, one per batch; a new seeded permutation each epoch.

    Under DDP each rank takes every ``world_size``-th index of the same permutation (the
    permutation is padded by wrapping so every rank gets the same number of batches), like
    ``DistributedSampler``. Lightning calls ``set_epoch`` at each epoch start, so a resumed
    run sees the same order as an uninterrupted one.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def samples_per_rank(self) -> int:
        return math.ceil(self.num_samples / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self.samples_per_rank / self.batch_size)

    def indices(self) -> Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=g)
        else:
            order = torch.arange(self.num_samples)
        if self.world_size > 1:
            total = self.samples_per_rank * self.world_size
            if total > self.num_samples:  # wrap around so every rank has equal work
                order = torch.cat([order, order[: total - self.num_samples]])
            order = order[self.rank : total : self.world_size]
        return order

    def __iter__(self) -> Iterator[Tensor]:
        order = self.indices()
        for b in range(len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


class TensorBatches:
    """An iterable of batches ``(t[idx] for t in tensors)``; what a DataModule returns
    instead of a ``DataLoader``. Like a DataLoader it exposes ``batch_sampler`` (and
    ``sampler``), through which Lightning calls ``set_epoch``."""

    def __init__(self, tensors: Sequence[Tensor], sampler: BatchIndexSampler):
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
        self.tensors = tuple(tensors)
        self.batch_sampler = self.sampler = sampler
        self._taken = 0  # batches handed out in the current pass
        self._skip: tuple[int, int] | None = None  # (epoch, batches) to skip on the next pass

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        device = self.tensors[0].device
        skip = 0
        if self._skip is not None and self._skip[0] == self.sampler.epoch:
            skip = self._skip[1]
        self._skip = None
        self._taken = skip
        for b, idx in enumerate(self.sampler):
            if b < skip:
                continue
            self._taken += 1
            idx = idx.to(device, non_blocking=True)
            yield tuple(t.index_select(0, idx) for t in self.tensors)

    # Lightning saves a loader that has state_dict/load_state_dict in every checkpoint and hands
    # the state back on resume, so a run stopped mid-epoch continues with the very next batch.
    # Lightning fetches a loader that has a length one batch at a time (no look-ahead), so each
    # batch handed out has been trained on when a step's-end checkpoint is written
    # (tests/test_lifecycle.py resumes mid-epoch bit-identically, and fails if that changes).
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._taken}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = (int(state["epoch"]), int(state["batches"]))


class InMemoryDataModule(LightningDataModule):
    """Base for data modules whose splits are tensors held in memory.

    Subclasses implement ``load_splits()`` returning ``{"train": (x, y), "val": ..., "test": ...}``
    and declare what the data contract asks (datamodules/contract.py: ``input_shape``,
    ``target_kind``, ``num_classes`` or ``target_dim``, and ``class_names``, ``normalization``
    where they apply).
    """

    input_shape: tuple[int, ...] | None = None
    target_kind: str | None = None
    num_classes: int | None = None
    target_dim: int | None = None
    class_names: tuple[str, ...] | None = None
    normalization: dict | None = None

    def __init__(self, batch_size: int = 128, eval_batch_size: int | None = None, on_device: bool = False):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.on_device = on_device
        self.splits: dict[str, tuple[Tensor, ...]] = {}
        self._shuffle_seed: int | None = None

    def load_splits(self) -> dict[str, tuple[Tensor, ...]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.load_splits()
            if self.on_device and self.trainer is not None:
                device = self.trainer.strategy.root_device
                self.splits = {k: tuple(t.to(device) for t in v) for k, v in self.splits.items()}
        if self._shuffle_seed is None:
            # Drawn from the global RNG, so `seed=N` (seed_everything) fixes the batch order.
            self._shuffle_seed = int(torch.randint(0, 2**31 - 1, ()).item())

    # Saved in checkpoints by Lightning: a resumed run shuffles as the original did, even with seed=null.
    def state_dict(self) -> dict[str, int]:
        return {} if self._shuffle_seed is None else {"shuffle_seed": self._shuffle_seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if "shuffle_seed" in state:
            self._shuffle_seed = int(state["shuffle_seed"])

    def _batches(self, split: str, shuffle: bool, batch_size: int) -> TensorBatches:
        if split not in self.splits:
            self.setup()
        tensors = self.splits[split]
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        sampler = BatchIndexSampler(
            len(tensors[0]), batch_size, shuffle=shuffle, seed=self._shuffle_seed or 0,
            rank=rank, world_size=world,
        )
        return TensorBatches(tensors, sampler)

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True, batch_size=self.batch_size)

    def ordered_dataloader(self, split: str) -> TensorBatches:
        """``split``'s batches in stored order (the contract's optional loader, for prediction)."""
        return self._batches(split, shuffle=False, batch_size=self.eval_batch_size)

    def val_dataloader(self) -> TensorBatches:
        return self.ordered_dataloader("val")

    def test_dataloader(self) -> TensorBatches:
        return self.ordered_dataloader("test")

    def predict_dataloader(self) -> TensorBatches:
        return self.ordered_dataloader("test")
