"""Plain ``nn.Module`` networks: no training logic, no Lightning."""

from lightning_modules.nets.airbench import AirbenchNet
from lightning_modules.nets.cnn import LeNet
from lightning_modules.nets.linear import LinearRegressor
from lightning_modules.nets.mlp import MLP
from lightning_modules.nets.resnet import ResNet
from lightning_modules.nets.two_layer import TwoLayerNet
from lightning_modules.nets.vgg import VGGNet
from lightning_modules.nets.xor import SimpleClassifier

__all__ = ["AirbenchNet", "LeNet", "LinearRegressor", "MLP", "ResNet", "SimpleClassifier", "TwoLayerNet", "VGGNet"]
