"""Test-time augmentation: a classifier's logits averaged over views of each image, used for the
test (and predictions) only, so that validation during training costs one pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def shift(x: Tensor, dy: int, dx: int) -> Tensor:
    """Images (N, C, H, W) moved by ``dy`` rows and ``dx`` columns, the uncovered border filled
    by reflection (on Fashion-MNIST's dark borders, the background)."""
    if dy == 0 and dx == 0:
        return x
    pad = max(abs(dy), abs(dx))
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


class TestTimeAugmentation:
    """The mean of the net's logits over the views of each image: the image itself, its mirror
    image (``flip``) and, with ``translate`` = t, the image shifted by (t, t) and (-t, -t) pixels
    (each mirrored too, with ``flip``): 2, 3 or 6 passes instead of one. As
    KellerJordan/cifar10-airbench, whose TTA is flip plus a one-pixel translation."""

    __test__ = False  # not a pytest test class

    def __init__(self, flip: bool = True, translate: int = 0):
        if translate < 0:
            raise ValueError(f"translate must be >= 0 pixels, got {translate}")
        self.flip = flip
        self.translate = translate

    def views(self, x: Tensor) -> list[Tensor]:
        shifted = [x] + [shift(x, t, t) for t in ((self.translate, -self.translate) if self.translate else ())]
        return shifted + [v.flip(-1) for v in shifted] if self.flip else shifted

    def __call__(self, net: nn.Module, x: Tensor) -> Tensor:
        layout = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        views = self.views(x)
        logits = net(views[0])
        for view in views[1:]:
            logits = logits + net(view.contiguous(memory_format=layout))
        return logits / len(views)

    def __repr__(self) -> str:
        return f"TestTimeAugmentation(flip={self.flip}, translate={self.translate})"

