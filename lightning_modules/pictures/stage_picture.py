"""What every picture of a validation or test has in common: ``StagePicture`` collects from each
batch, draws at the epoch's end and publishes, within a time budget; ``Sample`` keeps the first
rows of a stage's batches; ``predictions`` takes the step's own predictions. Whether a picture
applies, and the class names, come from what the data module declares (datamodules/contract.py)."""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer

import lightning_modules.pictures.publishing as publishing
from datamodules.contract import Declared, declared
from lightning_modules.pictures.publishing import tensorboards


def predictions(pl_module: LightningModule, outputs: Any, x: torch.Tensor, classes: bool) -> torch.Tensor:
    """The step's predictions (``outputs["preds"]``: class indices or regression values); when the
    step returns none, the model's own on ``x`` (for ``classes``, one logit: > 0; several: argmax)."""
    if isinstance(outputs, dict) and "preds" in outputs:
        return outputs["preds"].detach()
    with torch.no_grad():
        out = pl_module(x)
    if classes:
        return (out.squeeze(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
    return out


class StagePicture(Callback):
    """Collects from each validation/test batch (``collect``) and draws at the epoch's end
    (``draw``); subclasses say what they keep and how it looks.

    A picture costs about the same whatever the model, more than a whole epoch of a small model
    (XOR; benchmarks/pictures.py measures it). So in fit, a validation picture is drawn only when the time
    since the last drawing (or since fit started) is at least its cost over ``max_share``: a picture
    takes about ``max_share`` of the run. Its cost is taken as ``ASSUMED_COST`` until it was drawn
    once. The last epoch's (``max_epochs``) and the test pictures are always drawn;
    ``max_share=null`` draws every ``every_n_epochs``-th validation.
    """

    name = ""
    ASSUMED_COST = 0.1  # seconds, until measured: the costliest picture, a matplotlib one, under some load

    def __init__(self, every_n_epochs: int = 1, max_share: float | None = 0.02):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if max_share is not None and not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1] or null, got {max_share}")
        self.every_n_epochs, self.max_share = every_n_epochs, max_share
        self.active = False
        self.data: Declared | None = None  # what the trainer's data module declares
        self.cost, self.last_cost = 0.0, self.ASSUMED_COST  # seconds: this epoch's, the last drawing's
        self.since: float | None = None  # time.perf_counter() at fit start or the end of the last drawing

    def reset(self) -> None:
        raise NotImplementedError

    def applies(self, data: Declared) -> bool:
        """Whether this picture is drawn for data that declares ``data``."""
        raise NotImplementedError

    def collect(self, pl_module: LightningModule, x: torch.Tensor, y: torch.Tensor, outputs: Any) -> None:
        raise NotImplementedError

    def draw(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor | None:
        raise NotImplementedError

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.since = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.since = None  # a validate() or test() after fit draws

    def due(self, trainer: Trainer, stage: str) -> bool:
        if stage == "test" or (trainer.max_epochs is not None and trainer.current_epoch == trainer.max_epochs - 1):
            return True
        if trainer.current_epoch % self.every_n_epochs:
            return False
        if self.max_share is None or self.since is None:
            return True
        return self.last_cost <= self.max_share * (time.perf_counter() - self.since)

    def _start(self, trainer: Trainer, stage: str) -> None:
        self.data = declared(trainer.datamodule) if trainer.datamodule is not None else None
        self.active = (trainer.is_global_zero and not trainer.sanity_checking and bool(tensorboards(trainer))
                       and self.data is not None and self.applies(self.data) and self.due(trainer, stage))
        self.cost = 0.0
        self.reset()

    def _batch(self, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        if self.active and isinstance(batch, (tuple, list)) and len(batch) >= 2:
            started = time.perf_counter()
            x, y = batch[0], batch[1]
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                self.collect(pl_module, x, y, outputs)
            self.cost += time.perf_counter() - started

    def _end(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.active:
            started = time.perf_counter()
            image = self.draw(stage, trainer, pl_module)
            if image is not None:
                publishing.publish(trainer, f"{stage}/{self.name}", image)
                self.since = time.perf_counter()
                self.last_cost = self.cost + self.since - started
        self.active = False
        self.reset()  # hold no tensors between epochs

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, "val")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch(pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("val", trainer, pl_module)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, "test")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch(pl_module, outputs, batch)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("test", trainer, pl_module)


class Sample:
    """The first ``limit`` rows of several tensors, gathered over batches on the CPU."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.count = limit, [], 0

    def add(self, *tensors: torch.Tensor) -> None:
        take = min(self.limit - self.count, len(tensors[0]))
        if take > 0:
            self.parts.append([t[:take].detach().cpu() for t in tensors])
            self.count += take

    def room(self) -> int:
        return self.limit - self.count

    def tensors(self) -> list[torch.Tensor] | None:
        return [torch.cat(column) for column in zip(*self.parts)] if self.parts else None
