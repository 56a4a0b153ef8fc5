"""Pictures for TensorBoard, drawn from the batches Lightning hands to the validation and test
hooks (so any LightningDataModule that keeps the data contract works, a DataLoader-based one
included; which pictures apply, and the class names, are what it declares:
datamodules/contract.py): the decision boundary of a 2-D classifier, the fit of a regression,
labelled images, the confusion matrix, the model graph.

Each picture is logged under ``val/<name>`` after a validation (never the sanity check; in fit
as often as its time budget allows, see ``StagePicture``) and ``test/<name>`` after a test, to
every TensorBoardLogger of the trainer, and saved as ``<trainer.default_root_dir>/pictures/
<stage>_<name>.png`` (the latest one). A picture that does not apply to the data, or a trainer
without a TensorBoardLogger, draws nothing.
"""

from lightning_modules.pictures.confusion_matrix import ConfusionMatrixPicture
from lightning_modules.pictures.decision_boundary import DecisionBoundary
from lightning_modules.pictures.model_graph import ModelGraph
from lightning_modules.pictures.prediction_grid import ImagePredictionGrid
from lightning_modules.pictures.regression_fit import RegressionFit
from lightning_modules.pictures.stage_picture import StagePicture

__all__ = ["ConfusionMatrixPicture", "DecisionBoundary", "ImagePredictionGrid", "ModelGraph", "RegressionFit",
           "StagePicture"]
