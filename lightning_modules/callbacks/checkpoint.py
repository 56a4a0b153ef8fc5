"""Best and last checkpoints in one callback."""

from __future__ import annotations

from functools import cached_property

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (the ``save_top_k`` best by ``monitor``) that also writes
    ``last.ckpt`` at the end of every validated epoch (every training epoch when there is no
    validation), to resume from.

    Lightning 2.6's own ``save_last=True`` rewrites last.ckpt only in epochs that also save a
    top-k checkpoint, so after the best epoch it goes stale; here it is written through
    ``trainer.save_checkpoint``, so through the trainer's checkpoint IO (atomic in a run folder).
    A second ModelCheckpoint just for it would add its hooks to every training step.
    """

    def __init__(self, *args, save_last: bool = True, **kwargs):
        super().__init__(*args, save_last=False, **kwargs)  # last.ckpt is written below, every epoch
        self.keep_last = bool(save_last)
        # (step, best checkpoint) of the last.ckpt written: an epoch's top-k save may come after the
        # validation hook wrote last.ckpt (Lightning saves top-k at train-epoch end when validation runs
        # once an epoch), and last.ckpt must name the best that exists, or a resume tests a deleted file.
        self.last_saved: tuple[int, str] | None = None

    # Lightning formats the state key into a label around each hook it calls (several a step);
    # its inputs are fixed in __init__, so it is computed once.
    @cached_property
    def state_key(self) -> str:
        return super().state_key

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self.save_last_checkpoint(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.save_last_checkpoint(trainer)  # skipped when this epoch's validation wrote it with this best

    def save_last_checkpoint(self, trainer: Trainer) -> None:
        if (not self.keep_last or trainer.sanity_checking or trainer.fast_dev_run
                or trainer.state.fn != TrainerFn.FITTING
                or self.last_saved == (trainer.global_step, self.best_model_path)):
            return
        self.last_model_path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)  # before: it is saved
        trainer.save_checkpoint(self.last_model_path, weights_only=self.save_weights_only)
        self.last_saved = (trainer.global_step, self.best_model_path)
