"""Augmentations applied to whole batches of images (N, C, H, W), on the batch's device.

Each takes an optional ``torch.Generator``: with it the result is a function of the
generator's seed; without it the global RNG (set by ``seed=``) is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _rand(n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, device=x.device, generator=generator)


def random_crop(x: Tensor, padding: int, generator: torch.Generator | None = None,
                fill: float | Sequence[float] = 0.0) -> Tensor:
    """Pad by ``padding`` pixels of value ``fill`` (one value, or one per channel) and crop back
    to H x W at a random offset per image."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    pads = (padding, padding, padding, padding)
    values = [float(v) for v in fill] if isinstance(fill, Sequence) else [float(fill)]
    if len(set(values)) == 1:
        padded = F.pad(x, pads, value=values[0])
    else:  # a value per channel: F.pad takes one
        padded = x.new_empty((n, c, h + 2 * padding, w + 2 * padding))
        padded.copy_(torch.tensor(values, dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand_as(padded))
        padded[..., padding:padding + h, padding:padding + w] = x
    span = 2 * padding + 1
    dy = (_rand(n, x, generator) * span).long()
    dx = (_rand(n, x, generator) * span).long()
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_hflip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    if p <= 0:
        return x
    flip = (_rand(x.shape[0], x, generator) < p)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def random_erasing(
    x: Tensor,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.2),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """With probability ``p`` per image, fill one random rectangle (area fraction in
    ``scale``, aspect ratio in ``ratio``) with ``value``, as torchvision's RandomErasing."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    area = h * w * (scale[0] + (scale[1] - scale[0]) * _rand(n, x, generator))
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * _rand(n, x, generator)
    aspect = torch.exp(log_r)
    eh = torch.sqrt(area * aspect).round().clamp(1, h).long()
    ew = torch.sqrt(area / aspect).round().clamp(1, w).long()
    top = (_rand(n, x, generator) * (h - eh + 1)).long()
    left = (_rand(n, x, generator) * (w - ew + 1)).long()
    apply = _rand(n, x, generator) < p
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_rows = (r >= top[:, None]) & (r < (top + eh)[:, None])
    in_cols = (c >= left[:, None]) & (c < (left + ew)[:, None])
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None])[:, None]
    return x.masked_fill(mask, value)


class BatchAugment:
    """The training-time augmentation pipeline of an image data module (set in ``conf/data/``).

    ``alternate_flip`` (instead of ``hflip_p``) mirrors each image in every other epoch, as the
    CIFAR-10 speed records do (KellerJordan/cifar10-airbench): ``prepare`` mirrors a random half
    of the stored training images once, and odd epochs mirror whole batches, so that every
    image is seen both ways in any two epochs in a row (random flips repeat a view half the time).
    """

    def __init__(self, crop_padding: int = 0, hflip_p: float = 0.0, erasing_p: float = 0.0,
                 erasing_scale: tuple[float, float] = (0.02, 0.2), alternate_flip: bool = False):
        for name, p in (("hflip_p", hflip_p), ("erasing_p", erasing_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if alternate_flip and hflip_p:
            raise ValueError(f"alternate_flip mirrors every image in every other epoch: set hflip_p=0 "
                             f"(random mirroring) with it, got hflip_p={hflip_p}")
        self.crop_padding = crop_padding
        self.hflip_p = hflip_p
        self.erasing_p = erasing_p
        self.erasing_scale = tuple(erasing_scale)
        self.alternate_flip = alternate_flip

    def prepare(self, train_images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The training images as the data module should store them: with ``alternate_flip``, a
        random half of them mirrored (the ``generator``'s draw, else the global RNG's)."""
        if not self.alternate_flip:
            return train_images
        mirrored = (torch.rand(len(train_images), generator=generator) < 0.5).to(train_images.device)
        return torch.where(mirrored[:, None, None, None], train_images.flip(-1), train_images)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None, epoch: int = 0,
                 fill: float | Sequence[float] = 0.0) -> Tensor:
        """The augmented batch; crops pad with ``fill``: for normalised images, what a black pixel
        becomes (ImageDataModule.augment_batch), as torchvision's RandomCrop pads raw images with 0."""
        x = random_crop(x, self.crop_padding, generator, fill)
        if self.alternate_flip:
            x = x.flip(-1) if epoch % 2 else x
        else:
            x = random_hflip(x, self.hflip_p, generator)
        return random_erasing(x, self.erasing_p, scale=self.erasing_scale, generator=generator)

    def __repr__(self) -> str:
        return (f"BatchAugment(crop_padding={self.crop_padding}, hflip_p={self.hflip_p}, "
                f"erasing_p={self.erasing_p}, alternate_flip={self.alternate_flip})")
