from torch import nn


class TwoLayerNet(nn.Module):
    """Linear -> ReLU -> Linear, the classic 'fit random data' network (1000 -> 100 -> 10)."""

    def __init__(self, in_features: int = 1000, hidden: int = 100, out_features: int = 10):
        super().__init__()
        self.input_shape = (in_features,)
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features)
        )

    def forward(self, x):
        return self.layers(x)
