"""Task-level LightningModules (loss, metrics, optimizers) wrapping the plain nets in ``nets/``."""

from lightning_modules.classification import ClassificationModule
from lightning_modules.manual_backprop import ManualBackpropRegression
from lightning_modules.regression import RegressionModule
from lightning_modules.task import TaskModule

__all__ = ["ClassificationModule", "ManualBackpropRegression", "RegressionModule", "TaskModule"]
