"""The tasks this project trains, in one table: what each task module learns from, the metric
it is monitored by unless the config names another, and the metrics a fit logs every epoch (what
a checkpoint, early stopping or a sweep can monitor; ``train/loss_step`` is logged only on the
steps the loggers write, so it is not one). Plain Python, no torch: the configs' resolvers and
checks read it before anything heavy is imported; the task modules, and the sweep's hparams
experiment, read it too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A regression task logs the error metrics that its loss is not (an L1 loss is already the MAE).
REGRESSION_ERRORS = {"l1": ("mse",), "mse": ("mae",), "sse": ("mse", "mae")}
STAGES = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    kind: str  # "classification" or "regression"
    targets: frozenset[str]  # the data's target kinds it learns: binary, multiclass, regression
    monitor: tuple[str, str]  # (metric, min|max)
    default_loss: str | None = None  # a regression task's loss when the config names none

    def errors(self, loss: str | None) -> tuple[str, ...]:
        """The error metrics a regression task logs beside a ``loss`` loss."""
        return REGRESSION_ERRORS[loss or self.default_loss] if self.kind == "regression" else ()

    def metric_names(self, model: Mapping[str, Any]) -> tuple[str, ...]:
        """The metrics a task configured by ``model`` logs for every stage: its own, then those of
        the config's ``metrics`` (lightning_modules/task.py)."""
        own = ("acc",) if self.kind == "classification" else self.errors(model.get("loss"))
        return (*own, *(model.get("metrics") or {}))

    def logged_during_fit(self, model: Mapping[str, Any]) -> set[str]:
        """What a fit of this task, configured by ``model``, logs every epoch."""
        best = {"val/acc_best"} if self.kind == "classification" else set()
        return {"train/loss", "train/lr", "val/loss", *best,
                *(f"{s}/{m}" for s in ("train", "val") for m in self.metric_names(model))}


CLASSIFICATION = Task("classification", frozenset({"binary", "multiclass"}), ("val/acc", "max"))
REGRESSION = Task("regression", frozenset({"regression"}), ("val/loss", "min"), default_loss="l1")
SUM_OF_SQUARES = Task("regression", frozenset({"regression"}), ("val/loss", "min"), default_loss="sse")

# The configs' ``_target_`` of each task module -> its task.
TASKS: dict[str, Task] = {
    "lightning_modules.ClassificationModule": CLASSIFICATION,
    "lightning_modules.RegressionModule": REGRESSION,
    "lightning_modules.ManualBackpropRegression": SUM_OF_SQUARES,
}
# Every metric a task logs for validation and test: a sweep's hparams experiment lists them all,
# so that the runs of every task show theirs in TensorBoard's one experiment summary.
EVALUATION_METRICS = tuple(f"{stage}/{name}" for stage in ("val", "test")
                           for name in ("loss", "acc", *dict.fromkeys(e for es in REGRESSION_ERRORS.values() for e in es)))


def task_of(target: str) -> Task | None:
    """The task of a task module's ``_target_``; a subclass of one of this project's task modules
    (imported to see) is that module's task; None for a task module the project does not know."""
    if target in TASKS:
        return TASKS[target]
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except (ImportError, ValueError):
        return None  # a misspelt target: instantiating it says so
    return getattr(cls, "task", None)
