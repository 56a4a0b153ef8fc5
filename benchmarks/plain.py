"""The reference: a hand-written PyTorch loop over the same in-memory tensors.

What a careful user writes without a framework: shuffle with ``randperm``, slice batches out of
the tensors, normalise the batch as the data module does, forward / loss / backward / step, and
validate once per epoch (loss and accuracy). No DataLoader, no logging, no checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmarks.clock import clock


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
    augment: Callable[[Tensor], Tensor] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> dict[str, float]:
    """One epoch; returns ``epoch_s`` (train + validation), ``train_s``, ``steps`` and ``val_acc``,
    timed over the same span as :class:`benchmarks.timing.EpochTimer` times the framework's epoch.
    ``augment`` transforms training batches only; ``scheduler`` is stepped after every step."""
    transform = transform or (lambda x: x)
    sync = sync or (lambda: None)
    sync()
    x_train, y_train = train
    start = clock()
    net.train()
    order = torch.randperm(len(x_train), device=x_train.device)
    steps = 0
    running = torch.zeros((), device=x_train.device)
    for i in range(0, len(x_train), batch_size):
        idx = order[i : i + batch_size]
        x, y = transform(x_train[idx]), y_train[idx]
        if augment is not None:
            x = augment(x)
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running += loss.detach()
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    sync()
    train_end = clock()
    val_acc = None
    if val is not None and max_steps is None:
        val_acc = evaluate(net, loss_fn, val, eval_batch_size, transform, predict)
    _ = running.item()
    sync()
    end = clock()
    return {"epoch_s": end - start, "train_s": train_end - start, "steps": steps, "val_acc": val_acc}


def evaluate(
    net: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    split: tuple[Tensor, Tensor],
    batch_size: int,
    transform: Callable[[Tensor], Tensor],
    predict: Callable[[Tensor], Tensor] | None,
    tta: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> float | None:
    """Mean loss and accuracy over a split, in eval mode; returns the accuracy (None without
    ``predict``). ``tta(net, x)``, when given, stands for ``net(x)`` (test-time augmentation)."""
    net.eval()
    x_all, y_all = split
    total = torch.zeros((), device=x_all.device)
    correct = torch.zeros((), device=x_all.device)
    with torch.no_grad():
        for i in range(0, len(x_all), batch_size):
            x, y = transform(x_all[i : i + batch_size]), y_all[i : i + batch_size]
            out = net(x) if tta is None else tta(net, x)
            total += loss_fn(out, y) * len(y)
            if predict is not None:
                correct += (predict(out) == y).sum()
    _ = (total / len(x_all)).item()
    return (correct / len(x_all)).item() if predict is not None else None
