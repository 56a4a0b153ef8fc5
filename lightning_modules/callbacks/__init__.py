"""Lightning callbacks of this project, as the configs name them (``lightning_modules.callbacks.X``):
best and last checkpoints (checkpoint.py), an exponential moving average of the weights (ema.py),
lookahead (lookahead.py), the model summary (model_summary.py). The TensorBoard pictures are in
lightning_modules/pictures/, what keeps a run trustworthy in lightning_modules/run_guard.py."""

from lightning_modules.callbacks.checkpoint import BestAndLastCheckpoint
from lightning_modules.callbacks.ema import EMAWeightAveraging
from lightning_modules.callbacks.lookahead import Lookahead
from lightning_modules.callbacks.model_summary import ModelSummary

__all__ = ["BestAndLastCheckpoint", "EMAWeightAveraging", "Lookahead", "ModelSummary"]
