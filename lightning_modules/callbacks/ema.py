"""An exponential moving average of the weights (``callbacks=ema``)."""

from __future__ import annotations

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging as _LightningEMA
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeightAveraging(_LightningEMA):
    """Lightning's exponential moving average of the weights (``callbacks=ema``): validation,
    the checkpoints' ``state_dict`` and the test after fit all use the averaged weights.

    One fix: Lightning's callback puts the raw weights back whenever a checkpoint is loaded, so
    ``test`` on the best checkpoint after ``fit`` would test that epoch's raw weights instead of
    their average. Outside fit the checkpoint's own weights, the average, are kept.
    """

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
