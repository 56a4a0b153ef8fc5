"""What every task module shares: the wrapped net, the step wrappers Lightning calls, the loss
logged per step and per epoch, optimizer/scheduler built from Hydra partials, and the run's
resolved config stored in each checkpoint.

A task (classification.py, regression.py) implements ``step(batch, stage)``: the batch's loss
and predictions, logged for ``stage`` (``train``, ``val`` or ``test``) with ``update_metric``,
``log_loss`` and ``log_metric``; ``train_metrics()`` names its training metrics, logged at each
epoch's end. Besides its own metrics a task logs those of the config's ``metrics`` (torchmetrics by
``_target_``: ``{f1: {_target_: torchmetrics.F1Score, _partial_: true}}``), under the same names
for each stage; task_table.py names them all for the configs' checks.

What the steps return (the other half of the data contract, datamodules/contract.py):
``validation_step`` and ``test_step`` ``{"loss", "preds"}`` (class indices or regression
outputs), ``predict_step`` ``{"preds", "targets"}`` (class probabilities or regression outputs,
and the batch's own targets when it has them).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics import MeanMetric, Metric

from lightning_modules.checkpoint_keys import RUN_CONFIG
from lightning_modules.lightning_internals import QuickHookName, logs_this_step
from lightning_modules.task_table import REGRESSION, STAGES, Task


def completed_metric(spec: Any, arguments: Mapping[str, Any]) -> Metric:
    """A metric of the config: a built torchmetrics metric (copied), or a partial (``_partial_:
    true``) completed with the task's ``arguments`` (``task``, ``num_classes``, ``num_outputs``)
    that it takes and the config leaves out."""
    if isinstance(spec, Metric):
        return copy.deepcopy(spec)
    if not callable(spec):
        raise ValueError(f"{spec!r} is not a metric: give a torchmetrics class by _target_ (with _partial_: true)")
    params = inspect.signature(getattr(spec, "func", spec)).parameters
    given = getattr(spec, "keywords", {})
    metric = spec(**{k: v for k, v in arguments.items() if k in params and given.get(k) is None})
    if not isinstance(metric, Metric):
        raise ValueError(f"{type(metric).__name__} is not a torchmetrics Metric")
    return metric


def schedule_length_kwargs(factory: Callable[..., Any], length: int) -> dict[str, int]:
    """``{"total_steps": length}`` (OneCycle) or ``{"T_max": length}`` (cosine) for a scheduler
    partial that leaves its length out; nothing for one that sets it or has none."""
    given = getattr(factory, "keywords", {})
    params = inspect.signature(getattr(factory, "func", factory)).parameters
    return {name: length for name in ("total_steps", "T_max") if name in params and given.get(name) is None}


class TaskModule(QuickHookName, LightningModule):
    #: what this task learns from, its default monitor and the metrics it logs (task_table.py)
    task: Task = REGRESSION

    @property
    def accepted_targets(self) -> frozenset[str]:
        """What this task can learn from, compared with a data module's ``target_kind``."""
        return self.task.targets

    @property
    def default_monitor(self) -> tuple[str, str]:
        """The metric to monitor (checkpointing, sweeps) unless the config names another."""
        return self.task.monitor

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        torch_compile: bool = False,
        metrics: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.torch_compile = torch_compile
        self.net_compiled = False
        # "disable": no NaN check at each step (on a GPU, a wait for it); RunGuard stops at a NaN loss.
        self.train_loss = MeanMetric(nan_strategy="disable")
        # id(metric) -> (metric, each training step's inputs), applied at the epoch's end (update_metric)
        self.pending_updates: dict[int, tuple[Metric, list[tuple[torch.Tensor, ...]]]] = {}
        # The run's resolved config (plain dicts/lists/scalars), saved in every checkpoint so
        # that evaluation can rebuild exactly this model; set by the pipeline.
        self.run_config: dict | None = None
        self.metric_specs = dict(metrics or {})  # built by the task (add_config_metrics), which knows their arguments
        self.config_metrics = nn.ModuleDict()

    def add_config_metrics(self, own: tuple[str, ...], arguments: Mapping[str, Any]) -> None:
        """The config's metrics, one per stage (``config_metrics["val_f1"]``), named beside the
        task's ``own`` ones."""
        for name, spec in self.metric_specs.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or name in {*own, "loss", "lr", "loss_step"} \
                    or name.endswith("_best"):
                raise ValueError(f"model.metrics.{name}: the metric needs another name (letters, digits and _; not "
                                 f"{', '.join(sorted({*own, 'loss', 'lr'}))}, which this task logs itself, nor *_best)")
            for stage in STAGES:
                self.config_metrics[f"{stage}_{name}"] = completed_metric(spec, arguments)

    def update_config_metrics(self, stage: str, preds: torch.Tensor, target: torch.Tensor) -> None:
        for name in self.metric_specs:
            metric = self.config_metrics[f"{stage}_{name}"]
            self.update_metric(stage, metric, preds, target)
            self.log_metric(stage, name, metric)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def step(self, batch: Any, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the predictions of ``batch``, with this task's metrics logged for ``stage``."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """What ``predict_step`` returns for inputs ``x`` (a task may turn outputs into probabilities)."""
        return self(x)

    # -- the hooks Lightning calls

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, _ = self.step(batch, "train")
        return loss

    # Callbacks read each batch's predictions from these outputs (class indices or regression
    # outputs), so the pictures need no second forward pass.
    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, preds = self.step(batch, "val")
        return {"loss": loss, "preds": preds}

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, preds = self.step(batch, "test")
        return {"loss": loss, "preds": preds}

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """The predictions and, from the same batch, its targets (when it has them): a prediction
        file's rows can only pair what belongs together."""
        out = {"preds": self.predict(batch[0])}
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            out["targets"] = batch[1]
        return out

    # Training metrics are accumulated by torchmetrics at each step and logged once, at the epoch's
    # end: a self.log call costs as much Python as a small model's whole step
    # (benchmarks/overhead.py; lightning_modules/lightning_internals.py).

    def update_metric(self, stage: str, metric: Metric, *inputs: torch.Tensor) -> None:
        """``metric.update(*inputs)``; for a training metric at the epoch's end: the steps' inputs
        (a batch's predictions and targets, a few KB) are kept and given to it in one update, as
        each torchmetrics update costs Python time comparable to a share of a small model's step."""
        if stage == "train":
            self.pending_updates.setdefault(id(metric), (metric, []))[1].append(inputs)
        else:
            metric.update(*inputs)

    def apply_pending_updates(self) -> None:
        for metric, steps in self.pending_updates.values():
            metric.update(*(torch.cat(parts) for parts in zip(*steps)))
        self.pending_updates.clear()

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """``{stage}/loss``, the epoch's mean weighted by batch size, and ``train/loss_step`` at
        each training step that the loggers write (every ``trainer.log_every_n_steps``)."""
        if stage != "train":
            self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size,
                     sync_dist=True)
            return
        # The loss once per sample, so the mean weighs each batch by its size (torchmetrics 1.9
        # ignores ``weight`` under nan_strategy="disable"); expand makes a view, not a copy.
        self.update_metric("train", self.train_loss, loss.detach().expand(batch_size))
        if logs_this_step(self.trainer):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)

    def log_metric(self, stage: str, name: str, metric: Metric) -> None:
        """``{stage}/{name}``: the epoch's value of ``metric``, a torchmetrics metric that the
        task has just updated with a batch (training metrics: at the epoch's end)."""
        if stage != "train":
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=True)

    def train_metrics(self) -> dict[str, Metric]:
        """The training metrics by name (``acc``, the config's ...), logged as ``train/<name>`` each epoch."""
        return {name: self.config_metrics[f"train_{name}"] for name in self.metric_specs}

    def on_train_epoch_start(self) -> None:
        self.pending_updates.clear()  # of an epoch that did not end (a stop mid-epoch)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True,
                 sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self.apply_pending_updates()
        # Lightning computes each metric (synchronised across processes) and resets it.
        self.log("train/loss", self.train_loss, prog_bar=True)
        for name, metric in self.train_metrics().items():
            self.log(f"train/{name}", metric, prog_bar=True)

    def configure_model(self) -> None:
        # nn.Module.compile compiles the net in place, so the state_dict keys (and checkpoints)
        # stay those of the plain net. Lightning calls this hook for fit and again for test.
        if self.torch_compile and not self.net_compiled:
            self.net.compile()
            self.net_compiled = True

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, **self.schedule_length())
        config = {"scheduler": scheduler, "interval": self.scheduler_interval}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = self.default_monitor[0]
        return {"optimizer": optimizer, "lr_scheduler": config}

    def schedule_length(self) -> dict[str, int]:
        """Fill in a schedule's length from the trainer when the config leaves it out, so
        recipes stay right when epochs change."""
        if self.scheduler_interval == "step":
            length = int(self.trainer.estimated_stepping_batches)
        else:
            length = int(self.trainer.max_epochs or 1)
        return schedule_length_kwargs(self.scheduler_factory, length)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[RUN_CONFIG] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A run that set its own config (a resume, with its new trainer settings) keeps it, so
        # the checkpoints it writes describe what ran; a bare module takes the checkpoint's.
        if self.run_config is None:
            self.run_config = checkpoint.get(RUN_CONFIG)
