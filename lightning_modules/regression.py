from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from lightning_modules.task import TaskModule
from lightning_modules.task_table import REGRESSION

LOSSES = {
    "l1": lambda: nn.L1Loss(),
    "mse": lambda: nn.MSELoss(),
    "sse": lambda: nn.MSELoss(reduction="sum"),  # sum of squares, as in the classic 'fit random data' example
}


class RegressionModule(TaskModule):
    """Regression with an L1, MSE or sum-of-squares loss; logs ``{train,val,test}/loss``,
    ``train/loss_step``, and ``/mse`` and ``/mae`` except the one equal to the loss."""

    task = REGRESSION

    def __init__(self, net, optimizer, scheduler=None, loss: str = "l1", scheduler_interval: str = "epoch",
                 torch_compile: bool = False, metrics=None):
        super().__init__(net, optimizer, scheduler, scheduler_interval, torch_compile, metrics)
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r} is unknown; allowed: {sorted(LOSSES)}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "metrics"], logger=False)
        self.criterion = LOSSES[loss]()
        self.num_outputs = None  # any width: checked against the data's target_dim
        self.metric_names = self.task.errors(loss)
        kinds = {"mse": MeanSquaredError, "mae": MeanAbsoluteError}
        for stage in ("train", "val", "test"):
            for name in self.metric_names:
                setattr(self, f"{stage}_{name}", kinds[name]())
        self.add_config_metrics(self.metric_names, {})  # a metric of several outputs: num_outputs: ${from_data:num_outputs}

    def step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch[0], batch[1]
        preds = self(x)
        loss = self.criterion(preds, y)
        self.log_loss(stage, loss, len(y))
        preds = preds.detach()
        for name in self.metric_names:
            metric = getattr(self, f"{stage}_{name}")
            self.update_metric(stage, metric, preds, y)
            self.log_metric(stage, name, metric)
        self.update_config_metrics(stage, preds, y)
        return loss, preds

    def train_metrics(self):
        return {**{name: getattr(self, f"train_{name}") for name in self.metric_names}, **super().train_metrics()}
