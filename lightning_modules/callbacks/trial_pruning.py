"""``TrialPruning``: a fit that reports to an Optuna trial and stops when the study's pruner says so.

Optuna's own ``PyTorchLightningPruningCallback`` (Optuna 2.10's; optuna-integration's since) was
written for the ``pytorch_lightning`` package (not ``lightning``), reports the sanity check's value
too, and raises ``TrialPruned`` out of ``trainer.fit``, before the epoch's checkpoints are written.
Here:

- the value of ``monitor`` is reported once an epoch, after that epoch's last real validation
  (never the sanity check), at step = the epoch's index (0-based, as Optuna's pruners count):
  a step that a resumed fit reaches again only for the same epoch, whose repeated report Optuna
  ignores; a batch size the search varies does not change it;
- the pruner is asked after each report but the last epoch's (stopping then saves nothing, and
  the trial completes with its value); when it says prune, the fit ends after this epoch as an
  early stop does (``trainer.should_stop``), with its checkpoints written, and ``pruned`` says at
  which epoch (experiments/runs/folder.py records it; the run's status is ``pruned``);
- a non-finite value is not reported (the run fails as NaN, never as pruned);
- with several processes (DDP) only rank 0 holds the trial; its decision is broadcast.

The trial is an ``optuna.trial.Trial`` of the study in its storage; a run folder adds this callback
outside the run's config (experiments/runs/trial.py), so a checkpoint's run config names no class
of it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from lightning import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    """When and why a fit was pruned."""

    trial: int
    epoch: int  # the epoch's index (the step reported); epoch + 1 epochs were trained
    value: float  # the monitored value reported at that epoch
    pruner: str


class TrialPruning(Callback):
    def __init__(self, trial: Any | None, monitor: str, pruner_name: str = "the pruner"):
        """``trial``: the Optuna trial (None on ranks other than 0); ``monitor``: the metric reported."""
        self.trial, self.monitor, self.pruner_name = trial, monitor, pruner_name
        self.pruned: Pruned | None = None
        self._validated_epoch: int | None = None

    @property
    def state_key(self) -> str:  # formatted by Lightning around each hook call
        return "TrialPruning"

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if self._validated_epoch != epoch:
            return  # no validation in this epoch (check_val_every_n_epoch)
        prune, value = False, math.nan
        if self.trial is not None:
            value = _as_float(trainer.callback_metrics.get(self.monitor))
            if math.isfinite(value):
                self.trial.report(value, step=epoch)
                prune = not _last_epoch(trainer) and bool(self.trial.should_prune())
            elif self.monitor not in trainer.callback_metrics:
                log.warning("%s was not logged in epoch %d: nothing reported to trial %d", self.monitor, epoch,
                            self.trial.number)
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            number = self.trial.number if self.trial is not None else -1
            self.pruned = Pruned(trial=number, epoch=epoch, value=value, pruner=self.pruner_name)
            trainer.should_stop = True
            if self.trial is not None:
                log.info("Trial %d pruned by %s after epoch %d of %s (%s=%.6g): the fit stops here",
                         number, self.pruner_name, epoch + 1, trainer.max_epochs, self.monitor, value)


def _last_epoch(trainer: Trainer) -> bool:
    """The epoch that ends the fit by ``max_epochs`` (None or -1: no such epoch)."""
    max_epochs = trainer.max_epochs
    return max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs


def _as_float(value: Any) -> float:
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return math.nan
