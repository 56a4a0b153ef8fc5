from collections.abc import Sequence

import torch
from torch import nn


class VGGNet(nn.Module):
    """VGG-style CNN with a conv count per stage: each stage is (conv 3x3 -> BatchNorm -> ReLU)
    x ``convs[i]`` at width ``channels[i]``, then a 2x2 max-pool; then global average pooling,
    dropout and a linear head (``head_hidden`` > 0 adds a hidden layer of that width).

    ``convs`` spends the compute where it pays: on a CPU a second conv at 28x28 costs as much
    as both convs at 14x14, so the Fashion-MNIST recipes use one conv on the first stage.
    ``pool_first`` max-pools each stage's last conv output before its BatchNorm and ReLU
    (as fast CIFAR recipes do): a quarter of the elementwise work after the pool, less time
    per step on a CPU (125 vs 157 ms at batch 256 for the fashion_best net, in isolation).
    ``channels_last`` stores the conv weights in NHWC, which oneDNN (CPU) and cuDNN (GPU) run
    faster; pair it with ``data.channels_last=true`` so the batches are NHWC too. It survives
    ``.to(device)`` and checkpoint loading (``load_state_dict`` copies into the NHWC tensors).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 128),
        convs: Sequence[int] = (1, 2, 2),
        head_hidden: int = 0,
        dropout: float = 0.1,
        image_size: int = 28,
        channels_last: bool = False,
        flip_tta: bool = False,
        pool_first: bool = False,
    ):
        super().__init__()
        if len(channels) != len(convs):
            raise ValueError(f"channels {list(channels)} and convs {list(convs)} differ in length")
        self.input_shape = (in_channels, image_size, image_size)
        layers: list[nn.Module] = []
        prev = in_channels
        for width, count in zip(channels, convs):
            for k in range(count):
                layers.append(nn.Conv2d(prev, width, 3, padding=1, bias=False))
                if pool_first and k == count - 1:
                    layers.append(nn.MaxPool2d(2))
                layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                prev = width
            if not pool_first:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if head_hidden > 0:
            head += [nn.Linear(prev, head_hidden), nn.BatchNorm1d(head_hidden), nn.ReLU(inplace=True)]
            prev = head_hidden
        head += [nn.Dropout(dropout), nn.Linear(prev, num_classes)]
        self.head = nn.Sequential(*head)
        self.flip_tta = flip_tta
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x):
        logits = self.head(self.features(x))
        if self.flip_tta and not self.training:
            logits = (logits + self.head(self.features(x.flip(-1)))) / 2
        return logits
