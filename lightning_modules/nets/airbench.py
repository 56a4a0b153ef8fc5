from collections.abc import Sequence

import torch
from torch import nn

from lightning_modules.nets.whitening import PatchWhitening


def batch_norm(channels: int, momentum: float = 0.1, scale: bool = True) -> nn.BatchNorm2d:
    """BatchNorm; ``scale=False`` keeps its scale at 1 (not trained: only the shift is), as the
    CIFAR-10 speed records do."""
    norm = nn.BatchNorm2d(channels, momentum=momentum)
    norm.weight.requires_grad_(scale)
    return norm


def identity_init_(conv: nn.Conv2d) -> None:
    """Start the conv as the identity on its first ``min(in, out)`` channels (the records'
    ``dirac_`` initialisation): out channel i copies in channel i; the other filters keep their
    random initialisation."""
    with torch.no_grad():
        n = min(conv.in_channels, conv.out_channels)
        nn.init.dirac_(conv.weight[:n])


class ConvGroup(nn.Sequential):
    """conv 3x3 -> 2x2 max-pool -> BatchNorm -> ReLU, then ``depth - 1`` times conv 3x3 ->
    BatchNorm -> ReLU at the pooled resolution: the pool comes after the first conv, so the
    group's other convs cost a quarter of what they would before it."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 2, bn_momentum: float = 0.1,
                 bn_scale: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.MaxPool2d(2),
                                   batch_norm(out_channels, bn_momentum, bn_scale), nn.ReLU(inplace=True)]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                       batch_norm(out_channels, bn_momentum, bn_scale), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class AirbenchNet(nn.Module):
    """The net of the CIFAR-10 speed records (KellerJordan/cifar10-airbench's airbench94) for
    small images: a frozen patch-whitening first layer (``whitening_kernel``; lightning_modules/
    nets/whitening.py) and a ReLU, then one ``ConvGroup`` per entry of ``widths`` (each halves
    the resolution), a global max-pool and a linear head.

    ``space_to_depth`` = s first folds each s x s block of pixels into channels
    (``nn.PixelUnshuffle``, lossless): everything after runs at 1/s of the resolution, the
    cheapest start on a CPU, where the elementwise work at full resolution (BatchNorm, ReLU,
    pooling) costs more than the convs. ``channels_last`` stores the weights in NHWC, which
    oneDNN (CPU) and cuDNN (GPU) run faster; pair it with ``data.channels_last=true``.

    Three more of the records' choices, each off by default: ``identity_init`` starts every conv
    as the identity on its first channels (``identity_init_``), ``bn_scale=False`` trains only
    BatchNorm's shift, and ``bn_momentum`` is how fast BatchNorm's running statistics follow
    the batches (the records: 0.6, against PyTorch's 0.1). ``whitening_bias=False`` leaves the
    whitening layer without its bias, so nothing before the first conv learns and the backward
    pass skips that conv's input gradient (lightning_modules/nets/whitening.py).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: Sequence[int] = (24, 48, 96),
        depth: int = 2,
        whitening_kernel: int = 2,
        space_to_depth: int = 1,
        image_size: int = 28,
        channels_last: bool = False,
        identity_init: bool = False,
        bn_scale: bool = True,
        bn_momentum: float = 0.1,
        whitening_bias: bool = True,
    ):
        super().__init__()
        if space_to_depth < 1 or image_size % space_to_depth:
            raise ValueError(f"space_to_depth must be >= 1 and divide image_size {image_size}, got {space_to_depth}")
        if depth < 1 or not widths:
            raise ValueError(f"depth must be >= 1 and widths not empty, got depth={depth}, widths={list(widths)}")
        if not 0.0 < bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1], got {bn_momentum}")
        self.input_shape = (in_channels, image_size, image_size)
        self.channels_last = channels_last
        stem: list[nn.Module] = []
        channels = in_channels
        if space_to_depth > 1:
            stem.append(nn.PixelUnshuffle(space_to_depth))
            channels *= space_to_depth**2
        if whitening_kernel:
            whitening = PatchWhitening(channels, whitening_kernel, bias=whitening_bias)
            stem += [whitening, nn.ReLU(inplace=True)]
            channels = whitening.out_channels
        self.stem = nn.Sequential(*stem)
        groups = []
        for width in widths:
            groups.append(ConvGroup(channels, width, depth, bn_momentum, bn_scale))
            channels = width
        self.groups = nn.Sequential(*groups)
        if identity_init:
            for module in self.groups.modules():
                if isinstance(module, nn.Conv2d):
                    identity_init_(module)
        self.head = nn.Linear(channels, num_classes, bias=False)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x):
        x = self.stem(x)
        if self.channels_last:  # PixelUnshuffle gives NCHW
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.groups(x).amax(dim=(2, 3)))
