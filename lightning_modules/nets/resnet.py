from collections.abc import Sequence

from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv+BatchNorm layers around a shortcut (a 1x1 conv where the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet for images of any size and channel count: a 3x3 stem, then a stage per
    ``widths`` entry of ``blocks[i]`` basic blocks (each stage after the first halves the size),
    global average pooling and a linear head. ``in_channels`` and ``num_classes`` come from the
    data in conf/model/resnet.yaml."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128),
                 blocks: Sequence[int] = (1, 1, 1)):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {list(widths)} and blocks {list(blocks)} must be lists of one length")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True)]
        previous = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            for k in range(count):
                layers.append(BasicBlock(previous, width, stride=2 if i > 0 and k == 0 else 1))
                previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
