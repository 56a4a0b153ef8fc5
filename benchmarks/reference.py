"""The fixed reference workload that recipe times are measured against (issue 21): one epoch of
a plain-PyTorch LeNet (the net of ``model=cnn``), SGD (lr 0.01, momentum 0.9), batch 128, the
55,000 Fashion-MNIST training images as whole-tensor batches (benchmarks/plain.py), no
validation, no framework; the best of 2.

This machine's speed moves by 1.5x or more between days and within minutes, so a recipe's
seconds mean little alone: the tables give each time also in reference epochs, timed in the
same run, just before the recipe."""

from __future__ import annotations

import torch

from benchmarks.common import PlainSetup, sync

OVERRIDES = ["model=cnn", "data=fashion"]


def reference_epoch_s(device: str = "cpu", repeats: int = 2, setup: PlainSetup | None = None) -> float:
    """Seconds of the fastest of ``repeats`` reference epochs (each from a fresh LeNet)."""
    from benchmarks.plain import plain_epoch

    setup = setup or PlainSetup(OVERRIDES, device)
    best = float("inf")
    for _ in range(repeats):
        torch.manual_seed(0)
        net = setup.build()[0]
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        record = plain_epoch(net, optimizer, torch.nn.functional.cross_entropy, setup.train, None, 128, 1000,
                             transform=setup.transform, sync=lambda: sync(setup.device))
        best = min(best, record["epoch_s"])
    return best
