"""Labelled images: a grid of the first images with their predicted (and true) classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.utils import draw_bounding_boxes, make_grid

from lightning_modules.pictures.drawing import font_path
from lightning_modules.pictures.stage_picture import Sample, StagePicture, predictions


class ImagePredictionGrid(StagePicture):
    """``predictions``, for image data: the first ``num_images`` images, ``per_row`` to a row and
    upscaled ``scale`` times, each captioned with the predicted class, framed green when right and
    red with the true class in brackets when wrong. Normalised images are rescaled for display."""

    name = "predictions"

    def __init__(self, num_images: int = 16, per_row: int = 4, scale: int = 4, font_size: int = 14,
                 every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.num_images, self.per_row, self.scale, self.font_size = num_images, per_row, scale, font_size
        self.padding = 2
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.num_images)

    def applies(self, data) -> bool:
        return data.classification and data.is_image

    def collect(self, pl_module, x, y, outputs) -> None:
        if (room := self.sample.room()) > 0:
            self.sample.add(x, y, predictions(pl_module, outputs, x[:room], classes=True))

    def draw(self, stage, trainer, pl_module):
        if (sample := self.sample.tensors()) is None:
            return None
        images, targets, preds = sample
        return self.grid(self.displayable(images, self.data.normalization), preds, targets, self.data.class_names)

    @staticmethod
    def displayable(images: torch.Tensor, normalization=None) -> torch.Tensor:
        """uint8 as it is; normalised floats back to their pixels by the data's declared
        normalisation; other floats stretched over 0-255."""
        if images.dtype == torch.uint8:
            return images
        images = images.float()
        if normalization and len(normalization["mean"]) in (1, images.shape[1]):
            shape = (1, -1, 1, 1)
            mean = torch.tensor(normalization["mean"], dtype=images.dtype).view(shape)
            std = torch.tensor(normalization["std"], dtype=images.dtype).view(shape)
            return ((images * std + mean) / normalization.get("scale", 1.0)).round().clamp(0, 255).to(torch.uint8)
        lo, hi = images.min(), images.max()
        return ((images - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8)

    def grid(self, images, preds, targets, names=None) -> torch.Tensor:
        """The tiles, each a caption strip over the upscaled image; all frames and captions are
        drawn in one call (a call per tile cost 3x as much)."""
        count = int(max(preds.max(), targets.max())) + 1
        names = names if names and len(names) >= count else [str(i) for i in range(count)]
        up = F.interpolate(self.displayable(images).float(), scale_factor=self.scale, mode="nearest").to(torch.uint8)
        if up.shape[1] == 1:
            up = up.expand(-1, 3, -1, -1)
        caption = 2 * self.font_size + 10  # two lines: predicted, (true)
        tiles = F.pad(up, (0, 0, caption, 0))
        grid = make_grid(tiles, nrow=self.per_row, padding=self.padding)
        h, w = tiles.shape[-2:]
        i = torch.arange(len(tiles))
        x0 = (i % self.per_row) * (w + self.padding) + self.padding
        y0 = (i // self.per_row) * (h + self.padding) + self.padding
        boxes = torch.stack([x0, y0, x0 + w - 1, y0 + h - 1], dim=1)
        right = (preds == targets).tolist()
        labels = [names[p] if ok else f"{names[p]}\n({names[t]})"
                  for p, t, ok in zip(preds.tolist(), targets.tolist(), right)]
        colors = ["lime" if ok else "red" for ok in right]
        return draw_bounding_boxes(grid, boxes, labels=labels, colors=colors, width=2, font=font_path(),
                                   font_size=self.font_size)
