"""The two-layer net of the manual-backprop tutorial, trained with hand-written gradients.

The tutorial computes the forward pass and the backward pass of ``Linear -> ReLU -> Linear``
by hand with tensor operations, for a sum-of-squares loss. Here the same arithmetic runs
inside Lightning's manual optimization: ``training_step`` computes the gradients, assigns them
to the parameters' ``.grad`` and steps the configured optimizer (plain SGD is the tutorial's
``w -= lr * grad``). Validation, test, prediction, logging and checkpoints are those of any
regression run.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.regression import RegressionModule
from lightning_modules.task_table import SUM_OF_SQUARES


def forward_and_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Sum-of-squares loss, predictions, and the gradient of the loss for each parameter of
    ``net`` (a ``TwoLayerNet``: ``layers.0`` Linear, ReLU, ``layers.2`` Linear), by hand."""
    first, second = net.layers[0], net.layers[2]
    w1, b1, w2, b2 = first.weight, first.bias, second.weight, second.bias
    # forward
    h = x @ w1.T + b1
    h_relu = h.clamp(min=0)
    y_pred = h_relu @ w2.T + b2
    loss = (y_pred - y).pow(2).sum()
    # backward, layer by layer
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = grad_y_pred.T @ h_relu
    grad_b2 = grad_y_pred.sum(0)
    grad_h = grad_y_pred @ w2
    grad_h[h <= 0] = 0  # ReLU passes the gradient only where its input was positive
    grad_w1 = grad_h.T @ x
    grad_b1 = grad_h.sum(0)
    grads = {"layers.0.weight": grad_w1, "layers.0.bias": grad_b1,
             "layers.2.weight": grad_w2, "layers.2.bias": grad_b2}
    return loss, y_pred, grads


class ManualBackpropRegression(RegressionModule):
    """Sum-of-squares regression with a ``TwoLayerNet`` whose gradients are written by hand
    (``forward_and_gradients``); Lightning's manual optimization applies them."""

    task = SUM_OF_SQUARES

    def __init__(self, net, optimizer, scheduler=None, scheduler_interval: str = "epoch",
                 torch_compile: bool = False, metrics=None):
        super().__init__(net, optimizer, scheduler, loss=SUM_OF_SQUARES.default_loss, scheduler_interval=scheduler_interval,
                         torch_compile=torch_compile, metrics=metrics)
        layers = getattr(net, "layers", None)
        if not (isinstance(layers, nn.Sequential) and len(layers) == 3 and isinstance(layers[0], nn.Linear)
                and isinstance(layers[1], nn.ReLU) and isinstance(layers[2], nn.Linear)):
            raise ValueError(f"ManualBackpropRegression has hand-written gradients for TwoLayerNet "
                             f"(Linear -> ReLU -> Linear) only, got {type(net).__name__}")
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        with torch.no_grad():  # nothing for autograd to record: the gradients are computed below
            loss, preds, grads = forward_and_gradients(self.net, x, y)
        if self.trainer.world_size > 1:  # averaged over the processes, as DDP does with autograd's
            grads = {name: self.trainer.strategy.reduce(g, reduce_op="mean") for name, g in grads.items()}
        optimizer = self.optimizers()
        for name, parameter in self.net.named_parameters():
            parameter.grad = grads[name]
        optimizer.step()
        optimizer.zero_grad()
        if self.scheduler_interval == "step":
            self.step_scheduler()
        self.log_loss("train", loss, len(y))
        for metric in self.train_metrics().values():  # logged at the epoch's end (on_train_epoch_end)
            self.update_metric("train", metric, preds, y)
        return loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()  # logs the epoch's training loss and metrics
        if self.scheduler_interval == "epoch":
            self.step_scheduler()

    def step_scheduler(self) -> None:
        """Manual optimization leaves the learning-rate schedule to the module."""
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(self.default_monitor[0])
            if value is not None:
                scheduler.step(value)
        else:
            scheduler.step()
