"""Callbacks that add pictures to TensorBoard."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import draw_bounding_boxes, make_grid


class ImagePredictionGrid(Callback):
    """After each validation, log ``val/predictions``: the first ``num_images`` validation
    images, each labelled with the predicted class — green when right, red with the true
    class in brackets when wrong. Does nothing for non-image data or without TensorBoard."""

    def __init__(self, num_images: int = 32, scale: int = 3, every_n_epochs: int = 1):
        self.num_images = num_images
        self.scale = scale
        self.every_n_epochs = every_n_epochs

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        dm = trainer.datamodule
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        splits = getattr(dm, "splits", {})
        if (trainer.sanity_checking or not loggers or "val" not in splits
                or splits["val"][0].ndim != 4 or trainer.current_epoch % self.every_n_epochs):
            return
        images, targets = (t[: self.num_images] for t in splits["val"])
        batch = dm.on_after_batch_transfer((images.to(pl_module.device), targets), 0)
        with torch.no_grad():
            logits = pl_module(batch[0])
        preds = (logits.squeeze(-1) > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)
        grid = make_grid(self.tiles(images, preds.cpu(), targets.cpu(), dm.class_names), nrow=8, padding=2)
        for logger in loggers:
            logger.experiment.add_image("val/predictions", grid, global_step=trainer.global_step)

    def tiles(self, images, preds, targets, names) -> list[torch.Tensor]:
        names = names or [str(i) for i in range(int(max(preds.max(), targets.max())) + 1)]
        up = F.interpolate(images.float(), scale_factor=self.scale, mode="nearest").to(torch.uint8)
        if up.shape[1] == 1:
            up = up.expand(-1, 3, -1, -1)
        tiles = []
        for image, p, t in zip(up, preds.tolist(), targets.tolist()):
            right = p == t
            label = names[p] if right else f"{names[p]} ({names[t]})"
            h, w = image.shape[1:]
            box = torch.tensor([[0, 0, w - 1, h - 1]])
            tiles.append(draw_bounding_boxes(image.contiguous(), box, labels=[label],
                                             colors=["lime" if right else "red"]))
        return tiles
