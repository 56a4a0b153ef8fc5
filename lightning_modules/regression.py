from __future__ import annotations

from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from lightning_modules.task import TaskModule

LOSSES = {
    "l1": lambda: nn.L1Loss(),
    "mse": lambda: nn.MSELoss(),
    "sse": lambda: nn.MSELoss(reduction="sum"),  # sum of squares, as in the classic 'fit random data' example
}


class RegressionModule(TaskModule):
    """Regression with an L1, MSE or sum-of-squares loss; logs ``{stage}/loss``, ``/mse``, ``/mae``."""

    accepted_targets = frozenset({"regression"})
    default_monitor = ("val/loss", "min")

    def __init__(self, net, optimizer, scheduler=None, loss: str = "l1", scheduler_interval: str = "epoch",
                 compile: bool = False):
        super().__init__(net, optimizer, scheduler, scheduler_interval, compile)
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r} is unknown; allowed: {sorted(LOSSES)}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.criterion = LOSSES[loss]()
        self.num_outputs = None  # any width: checked against the data's target_dim
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_mse", MeanSquaredError())
            setattr(self, f"{stage}_mae", MeanAbsoluteError())

    def _step(self, batch, stage: str):
        x, y = batch
        pred = self(x)
        loss = self.criterion(pred, y)
        self._log_loss(stage, loss, len(y))
        if stage == "train":  # running sums, logged at epoch end (see TaskModule._accumulate)
            err = pred.detach() - y
            self._accumulate("train/mse", err.square().sum(), err.numel())
            self._accumulate("train/mae", err.abs().sum(), err.numel())
            return loss
        for name in ("mse", "mae"):
            metric = getattr(self, f"{stage}_{name}")
            metric.update(pred.detach(), y)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self(batch[0])
