"""The reference: a hand-written PyTorch loop over the same in-memory tensors.

What a careful user writes without a framework: shuffle with ``randperm``, slice batches out of
the tensors, normalise the batch as the data module does, forward / loss / backward / step, and
validate once per epoch (loss and accuracy). No DataLoader, no logging, no checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn


def plain_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None,
    batch_size: int,
    eval_batch_size: int,
    transform: Callable[[Tensor], Tensor] | None = None,
    predict: Callable[[Tensor], Tensor] | None = None,
    max_steps: int | None = None,
    sync: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One epoch; returns ``epoch_s`` (train + validation), ``train_s`` and ``steps``, timed over
    the same span as :class:`benchmarks.timing.EpochTimer` times the framework's epoch."""
    transform = transform or (lambda x: x)
    sync = sync or (lambda: None)
    sync()
    x_train, y_train = train
    start = time.perf_counter()
    net.train()
    order = torch.randperm(len(x_train), device=x_train.device)
    steps = 0
    running = torch.zeros((), device=x_train.device)
    for i in range(0, len(x_train), batch_size):
        idx = order[i : i + batch_size]
        x, y = transform(x_train[idx]), y_train[idx]
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    sync()
    train_end = time.perf_counter()
    if val is not None and max_steps is None:
        net.eval()
        x_val, y_val = val
        total = torch.zeros((), device=x_val.device)
        correct = torch.zeros((), device=x_val.device)
        with torch.no_grad():
            for i in range(0, len(x_val), eval_batch_size):
                x, y = transform(x_val[i : i + eval_batch_size]), y_val[i : i + eval_batch_size]
                out = net(x)
                total += loss_fn(out, y) * len(y)
                if predict is not None:
                    correct += (predict(out) == y).sum()
        _ = (total / len(x_val)).item(), (correct / len(x_val)).item()
    _ = running.item()
    sync()
    end = time.perf_counter()
    return {"epoch_s": end - start, "train_s": train_end - start, "steps": steps}
