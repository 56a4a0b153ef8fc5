from collections.abc import Sequence

from torch import nn


class LeNet(nn.Module):
    """LeNet-style CNN for 1x28x28 images.

    conv 1->6 3x3 -> max-pool -> conv 6->16 3x3 -> max-pool -> fc 400 -> 120 -> 84 -> classes.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.input_shape = (in_channels, 28, 28)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ConvNet(nn.Module):
    """VGG-style CNN: stages of (conv 3x3 -> BatchNorm -> ReLU) x ``convs_per_stage``, each
    stage ending in a 2x2 max-pool, then global average pooling, dropout and a linear head.

    Widths are set per stage by ``channels``; BatchNorm makes it train fast with large
    learning rates (OneCycle), which is what the Fashion-MNIST recipes rely on.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 128),
        convs_per_stage: int = 2,
        dropout: float = 0.1,
        image_size: int = 28,
    ):
        super().__init__()
        self.input_shape = (in_channels, image_size, image_size)
        layers: list[nn.Module] = []
        prev = in_channels
        for width in channels:
            for _ in range(convs_per_stage):
                layers += [
                    nn.Conv2d(prev, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                prev = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(prev, num_classes)
        )

    def forward(self, x):
        return self.head(self.features(x))
