"""Epoch timing inside the training process, the same span for the framework and the plain loop.

``EpochTimer`` is a Lightning callback added to a composed config
(``+callbacks.epoch_timer._target_=benchmarks.timing.EpochTimer``); each instance appends what it
measured to ``EpochTimer.records`` so the benchmark, in the same process, can read it back.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.clock import clock


def _sync(pl_module) -> None:
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)


class EpochTimer(Callback):
    """Per training epoch: ``epoch_s`` from ``on_train_epoch_start`` to ``on_train_epoch_end``
    (training batches, then the epoch's validation and checkpoint, as Lightning orders them) and
    ``train_s`` up to the end of the last training batch (training batches only; on a GPU
    without a sync there, so ``epoch_s`` is the exact figure)."""

    records: ClassVar[list[dict[str, float]]] = []
    #: the last fit's wall time, from ``on_fit_start`` to ``on_fit_end`` (between-epoch work included)
    fit_s: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self._start = self._last_batch_end = self._fit_start = 0.0
        self._steps = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = clock()

    def on_fit_end(self, trainer, pl_module) -> None:
        _sync(pl_module)
        EpochTimer.fit_s = clock() - self._fit_start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._steps = 0
        _sync(pl_module)
        self._start = self._last_batch_end = clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._steps += 1
        self._last_batch_end = clock()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _sync(pl_module)
        end = clock()
        EpochTimer.records.append({
            "epoch": trainer.current_epoch,
            "epoch_s": end - self._start,
            "train_s": self._last_batch_end - self._start,
            "steps": self._steps,
        })
