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
