from torch import nn


class LinearRegressor(nn.Module):
    """``y = w x + b``: a single ``nn.Linear``, exposed as ``weight`` and ``bias``."""

    def __init__(self, in_features: int = 1, out_features: int = 1):
        super().__init__()
        self.input_shape = (in_features,)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x)
