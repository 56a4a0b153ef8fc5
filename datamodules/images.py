"""Images held in memory as uint8 tensors ``(N, C, H, W)``; each batch is normalised (and, in
training, augmented) as one tensor on the model's device, in ``on_after_batch_transfer``."""

from __future__ import annotations

import torch

from datamodules.augment import BatchAugment
from datamodules.batching import InMemoryDataModule


class ImageDataModule(InMemoryDataModule):
    """Base of the image data modules: its ``normalization`` (the contract's, per channel:
    ``(pixel * scale - mean) / std``) is applied to each uint8 batch after it reaches the device."""

    def __init__(self, batch_size: int = 128, eval_batch_size: int | None = None, augment: BatchAugment | None = None,
                 channels_last: bool = False, on_device: bool = False):
        super().__init__(batch_size, eval_batch_size, on_device)
        self.augment = augment
        self.channels_last = channels_last

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float, zero mean and unit std per channel over the training images."""
        scale, mean, std = self.normalization["scale"], self.normalization["mean"], self.normalization["std"]
        if len(mean) == 1:  # one channel: two scalar ops, in place
            x = x.float().mul_(scale / std[0]).sub_(mean[0] / std[0])
        else:
            shape = (1, len(mean), 1, 1)
            x = x.float().mul_(torch.tensor([scale / s for s in std], device=x.device).view(shape))
            x = x.sub_(torch.tensor([m / s for m, s in zip(mean, std)], device=x.device).view(shape))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def black(self) -> list[float]:
        """What a zero pixel becomes once normalised, per channel."""
        mean, std = self.normalization["mean"], self.normalization["std"]
        return [-m / s for m, s in zip(mean, std)]

    def augment_batch(self, x: torch.Tensor, epoch: int) -> torch.Tensor:
        """A normalised training batch through ``augment``. Its crops pad with black, as
        torchvision's RandomCrop pads raw images with 0: a 0 after normalisation would be the
        mean pixel, a grey frame around Fashion-MNIST's black background."""
        return self.augment(x, epoch=epoch, fill=self.black())

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch[0], batch[1]
        if x.dtype == torch.uint8:
            x = self.normalize(x)
            if self.augment is not None and self.trainer is not None and self.trainer.training:
                x = self.augment_batch(x, self.trainer.current_epoch)
        return (x, y, *batch[2:])
