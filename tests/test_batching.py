"""Whole-tensor batching: order, epochs, DDP shards."""

import pytest
import torch

from datamodules import BatchIndexSampler, TensorBatches


def test_batches_cover_every_sample_once_per_epoch():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10)
    batches = TensorBatches((x, y), BatchIndexSampler(10, 4, shuffle=True, seed=3))
    got = list(batches)
    assert [len(b[1]) for b in got] == [4, 4, 2] and len(batches) == 3
    seen = torch.cat([b[1] for b in got])
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(torch.cat([b[0] for b in got]).squeeze(1).long(), seen)  # rows stay paired


def test_shuffle_changes_with_epoch_and_repeats_with_seed():
    sampler = BatchIndexSampler(100, 100, shuffle=True, seed=5)
    first = next(iter(sampler))
    sampler.set_epoch(1)
    second = next(iter(sampler))
    assert not torch.equal(first, second)
    again = BatchIndexSampler(100, 100, shuffle=True, seed=5)
    again.set_epoch(1)
    assert torch.equal(next(iter(again)), second)


def test_unshuffled_order_keeps_the_last_partial_batch():
    sampler = BatchIndexSampler(10, 4)
    assert len(sampler) == 3
    assert [b.tolist() for b in sampler] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_ddp_ranks_split_the_same_permutation():
    shards = [list(BatchIndexSampler(11, 3, shuffle=True, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 2  # 6 samples per rank (one wrapped around)
    flat = [torch.cat(s) for s in shards]
    assert set(flat[0].tolist()) | set(flat[1].tolist()) == set(range(11))
    assert len(flat[0]) == len(flat[1]) == 6


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        BatchIndexSampler(10, 0)
    with pytest.raises(ValueError, match="tensors differ in length"):
        TensorBatches((torch.zeros(3), torch.zeros(4)), BatchIndexSampler(3, 1))
