from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric
from torchmetrics.classification import Accuracy

from lightning_modules.task import TaskModule
from lightning_modules.task_table import CLASSIFICATION
from lightning_modules.tta import TestTimeAugmentation


class ClassificationModule(TaskModule):
    """Classification with cross-entropy; with ``num_classes=2`` the net gives one logit
    and the loss is ``BCEWithLogits`` (the XOR tutorial's setting).

    Logs ``{train,val,test}/loss`` and ``/acc``, ``train/loss_step`` and ``val/acc_best``.
    ``tta`` (lightning_modules/tta.py) averages the logits over views of each image in the test
    and in predictions; validation during training stays one pass.
    """

    task = CLASSIFICATION

    def __init__(self, net, optimizer, scheduler=None, num_classes: int = 10, label_smoothing: float = 0.0,
                 scheduler_interval: str = "epoch", torch_compile: bool = False, metrics=None,
                 tta: TestTimeAugmentation | None = None):
        super().__init__(net, optimizer, scheduler, scheduler_interval, torch_compile, metrics)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "metrics", "tta"], logger=False)
        self.tta = tta
        self.binary = num_classes == 2
        self.num_outputs = 1 if self.binary else num_classes
        self.label_smoothing = label_smoothing
        # validate_args=False: the argument checks look at every value of every batch.
        metric = dict(task="binary") if self.binary else dict(task="multiclass", num_classes=num_classes)
        self.train_acc = Accuracy(**metric, validate_args=False)
        self.val_acc = Accuracy(**metric, validate_args=False)
        self.test_acc = Accuracy(**metric, validate_args=False)
        # In the state_dict, so that a resumed run's val/acc_best is the best over all its epochs.
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)
        # The config's metrics get class probabilities (an AUROC needs them): p(class 1) for binary targets.
        self.add_config_metrics(("acc",), {"task": metric["task"], "num_classes": num_classes})

    def loss_and_preds(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the predicted class indices."""
        if self.binary:
            logits = logits.squeeze(-1)
            target = y.float()
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            return F.binary_cross_entropy_with_logits(logits, target), (logits > 0).long()
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        return loss, logits.argmax(dim=-1)

    def step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch[0], batch[1]
        logits = self.tta(self.net, x) if stage == "test" and self.tta is not None else self(x)
        loss, preds = self.loss_and_preds(logits, y)
        self.log_loss(stage, loss, len(y))
        accuracy = getattr(self, f"{stage}_acc")
        self.update_metric(stage, accuracy, preds, y)
        self.log_metric(stage, "acc", accuracy)
        if self.metric_specs:
            logits = logits.detach()
            scores = torch.sigmoid(logits.squeeze(-1)) if self.binary else logits.softmax(dim=-1)
            self.update_config_metrics(stage, scores, y)
        return loss, preds

    def train_metrics(self):
        return {"acc": self.train_acc, **super().train_metrics()}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, one column per class (two for a binary task)."""
        logits = self(x) if self.tta is None else self.tta(self.net, x)
        if self.binary:
            p1 = torch.sigmoid(logits.squeeze(-1))
            return torch.stack([1 - p1, p1], dim=-1)
        return logits.softmax(dim=-1)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def on_load_checkpoint(self, checkpoint) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("state_dict", {})
        for key, value in self.val_acc_best.state_dict(prefix="val_acc_best.").items():
            state.setdefault(key, value)  # checkpoints written before val_acc_best was saved
