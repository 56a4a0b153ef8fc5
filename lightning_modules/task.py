"""What every task module shares: the wrapped net, optimizer/scheduler built from Hydra
partials, and the run's resolved config stored in each checkpoint."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torch import nn


def schedule_length_kwargs(factory: Callable[..., Any], length: int) -> dict[str, int]:
    """``{"total_steps": length}`` (OneCycle) or ``{"T_max": length}`` (cosine) for a scheduler
    partial that leaves its length out; nothing for one that sets it or has none."""
    given = getattr(factory, "keywords", {})
    params = inspect.signature(getattr(factory, "func", factory)).parameters
    return {name: length for name in ("total_steps", "T_max") if name in params and given.get(name) is None}


class TaskModule(LightningModule):
    #: what this task can learn from, compared with a data module's ``target_kind``
    accepted_targets: frozenset[str] = frozenset()
    #: metric to monitor (checkpointing, sweeps) unless the config names another
    default_monitor: tuple[str, str] = ("val/loss", "min")

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        compile: bool = False,
    ):
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.compile = compile
        # The run's resolved config (plain dicts/lists/scalars), saved in every checkpoint so
        # that evaluation can rebuild exactly this model; set by the pipeline.
        self.run_config: dict | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_model(self) -> None:
        if self.compile and not isinstance(self.net, torch._dynamo.eval_frame.OptimizedModule):
            self.net = torch.compile(self.net)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, **self._schedule_length_kwargs())
        config = {"scheduler": scheduler, "interval": self.scheduler_interval}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = self.default_monitor[0]
        return {"optimizer": optimizer, "lr_scheduler": config}

    def _schedule_length_kwargs(self) -> dict[str, int]:
        """Fill in a schedule's length from the trainer when the config leaves it out, so
        recipes stay right when epochs change."""
        if self.scheduler_interval == "step":
            length = int(self.trainer.estimated_stepping_batches)
        else:
            length = int(self.trainer.max_epochs or 1)
        return schedule_length_kwargs(self.scheduler_factory, length)

    def on_train_epoch_start(self) -> None:
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True,
                 sync_dist=True)
        self._epoch_sums: dict[str, list] = {}

    # Training-epoch means are kept as running (sum, count) tensors and logged once at epoch end:
    # a per-step self.log(on_epoch=True) or torchmetrics update costs ~0.3-1 ms of Python per
    # step, as much as a small model's whole step (benchmarks/overhead.py).
    def _accumulate(self, name: str, value: torch.Tensor, count: int, weight: int = 1) -> None:
        """Add ``value * weight`` to the running sum of ``name`` and ``count`` to its count."""
        sums = self.__dict__.setdefault("_epoch_sums", {})
        entry = sums.get(name)
        if entry is None:
            sums[name] = [value.detach().float() * weight, count]
        else:
            entry[0].add_(value.detach(), alpha=weight)
            entry[1] += count

    # Lightning sets _current_fx_name before and after each of the ~20 hooks it calls per
    # training step; nn.Module.__setattr__ checks every assignment against parameters, modules
    # and buffers, ~50 us a step on a 2-core CPU. This plain string needs none of it.
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    def _logging_this_step(self) -> bool:
        """Whether the logger will write this training step (every ``log_every_n_steps``)."""
        connector = getattr(self.trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs or bool(self.trainer.fast_dev_run)

    def on_train_epoch_end(self) -> None:
        for name, (total, count) in self.__dict__.get("_epoch_sums", {}).items():
            value = total / max(count, 1)
            if name == "train/loss":  # the names self.log(on_step=True, on_epoch=True) gives
                self.log("train/loss_epoch", value, sync_dist=True)
                self.log("train/loss", value, logger=False, prog_bar=True, sync_dist=True)
            else:
                self.log(name, value, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A run that set its own config (a resume, with its new trainer settings) keeps it, so
        # the checkpoints it writes describe what ran; a bare module takes the checkpoint's.
        if self.run_config is None:
            self.run_config = checkpoint.get("run_config")

    def _log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        if stage == "train":
            self._accumulate("train/loss", loss, batch_size, weight=batch_size)
            if self._logging_this_step():
                self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        else:
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
