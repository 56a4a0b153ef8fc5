"""The fit of a regression: the curve over the points, or predicted against target."""

from __future__ import annotations

import torch

from lightning_modules.pictures.drawing import figure, figure_to_image
from lightning_modules.pictures.publishing import title
from datamodules.contract import declared
from lightning_modules.pictures.stage_picture import Sample, StagePicture, predictions


class RegressionFit(StagePicture):
    """``fit``, for regression: with one input and one output, the training points (a sample
    taken in the first training epoch of the fit), the validation/test points and the model's
    prediction line; otherwise predicted against target for every output, with the diagonal."""

    name = "fit"

    def __init__(self, max_points: int = 1000, every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.max_points = max_points
        self.train_sample, self.sampling_train = Sample(max_points), False
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.max_points)

    def applies(self, data) -> bool:
        return not data.classification

    def on_fit_start(self, trainer, pl_module) -> None:
        super().on_fit_start(trainer, pl_module)
        data = declared(trainer.datamodule) if trainer.datamodule is not None else None
        self.train_sample = Sample(self.max_points)
        self.sampling_train = trainer.is_global_zero and data is not None and self.applies(data)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.sampling_train and isinstance(batch, (tuple, list)) and len(batch) >= 2:
            x, y = batch[0], batch[1]
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                self.train_sample.add(x, y)
            self.sampling_train = self.train_sample.room() > 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.sampling_train = False  # the first epoch's sample is enough: no work in later steps

    def collect(self, pl_module, x, y, outputs) -> None:
        if self.sample.room() > 0:
            self.sample.add(x, y, predictions(pl_module, outputs, x[: self.sample.room()], classes=False))

    def draw(self, stage, trainer, pl_module):
        if (points := self.sample.tensors()) is None:
            return None
        x, y, pred = (t.float() for t in points)
        fig, ax = figure(5.2, 4.4, margins=(0.14, 0.11, 0.97, 0.92))
        if x[0].numel() == 1 and y[0].numel() == 1:
            train = self.train_sample.tensors()
            every_x = x.flatten() if train is None else torch.cat([x.flatten(), train[0].float().flatten()])
            line_x = torch.linspace(every_x.min().item(), every_x.max().item(), 200).reshape(-1, *x.shape[1:])
            with torch.no_grad():
                line_y = pl_module(line_x.to(pl_module.device, points[0].dtype)).float().cpu().flatten()
            if train is not None:
                ax.scatter(train[0].flatten(), train[1].flatten(), s=10, color="#1f77b4", alpha=0.6, label="train")
            ax.scatter(x.flatten(), y.flatten(), s=14, color="#ff7f0e", label=stage)
            ax.plot(line_x.flatten(), line_y, color="#d62728", linewidth=2, label="model")
            ax.set(xlabel="x", ylabel="y", title=title(stage, trainer, "fit"))
        else:
            target, predicted = y.flatten(), pred.flatten()
            lo, hi = min(target.min(), predicted.min()).item(), max(target.max(), predicted.max()).item()
            ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="predicted = target")
            ax.scatter(target, predicted, s=6, alpha=0.5, color="#ff7f0e", label=f"{stage}, every output")
            ax.set(xlabel="target", ylabel="predicted", title=title(stage, trainer, "predicted vs target"))
        ax.legend(loc="best", fontsize=9)
        return figure_to_image(fig)
