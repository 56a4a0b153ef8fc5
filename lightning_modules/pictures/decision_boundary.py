"""The decision boundary of a classifier of 2-D points (XOR)."""

from __future__ import annotations

import torch

from lightning_modules.pictures.drawing import figure, figure_to_image
from lightning_modules.pictures.publishing import title
from lightning_modules.pictures.stage_picture import Sample, StagePicture


class DecisionBoundary(StagePicture):
    """``decision_boundary``, for a classifier of 2-D points (XOR): the model's probability of
    class 1 over the plane around the points (the predicted class for more than two classes),
    with up to ``max_points`` points coloured by their true class, as in the XOR tutorial."""

    name = "decision_boundary"

    def __init__(self, max_points: int = 500, resolution: int = 100, every_n_epochs: int = 1,
                 max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.max_points, self.resolution = max_points, resolution
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.max_points)

    def applies(self, data) -> bool:
        return data.classification and data.input_shape == (2,)

    def collect(self, pl_module, x, y, outputs) -> None:
        self.sample.add(x, y)

    def draw(self, stage, trainer, pl_module):
        if (points := self.sample.tensors()) is None:
            return None
        x, y = points
        lo, hi = x.min(0).values, x.max(0).values
        margin = 0.15 * (hi - lo) + 1e-3
        lo, hi = (lo - margin).tolist(), (hi + margin).tolist()
        xs = torch.linspace(lo[0], hi[0], self.resolution)
        ys = torch.linspace(lo[1], hi[1], self.resolution)
        plane = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
        with torch.no_grad():
            out = pl_module(plane.to(pl_module.device, x.dtype)).float().cpu()
        fig, ax = figure(5.2, 4.4, margins=(0.14, 0.11, 0.97, 0.92))
        shown = dict(origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto", interpolation="bilinear")
        if out.shape[-1] == 1:  # p(class 1), from blue (0) through white to red (1)
            ax.imshow(torch.sigmoid(out).reshape(self.resolution, -1), cmap="RdBu_r", vmin=0, vmax=1, alpha=0.6,
                      **shown)
        else:  # the predicted class's colour
            ax.imshow(out.argmax(-1).reshape(self.resolution, -1), cmap="tab10", vmin=0, vmax=9, alpha=0.35,
                      **shown)
        names = self.data.class_names
        for k in y.unique().tolist():
            label = f"class {names[k] if names and k < len(names) else k}"
            ax.scatter(*x[y == k].T, s=14, color=f"C{k}" if out.shape[-1] > 1 else ("#2166ac", "#b2182b")[k % 2],
                       edgecolors="black", linewidths=0.6, label=label)  # dark rims: visible on their own colour
        ax.legend(loc="upper right", fontsize=9, framealpha=0.8)
        what = "p(class 1), blue 0 to red 1" if out.shape[-1] == 1 else "predicted class"
        ax.set(xlabel="x1", ylabel="x2", title=title(stage, trainer, what))
        return figure_to_image(fig)
