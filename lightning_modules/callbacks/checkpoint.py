"""Best and last checkpoints in one callback."""

from __future__ import annotations

from functools import cached_property

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from lightning_modules.atomic_files import link_atomic
from lightning_modules.lightning_internals import validating_at_epoch_end


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (the ``save_top_k`` best by ``monitor``) that also writes
    ``last.ckpt`` at the end of every validated epoch (every training epoch when there is no
    validation), to resume from.

    Lightning 2.6's own ``save_last=True`` rewrites last.ckpt only in epochs that also save a
    top-k checkpoint, so after the best epoch it goes stale; here it is written through
    ``trainer.save_checkpoint``, so through the trainer's checkpoint IO (atomic in a run folder).
    A second ModelCheckpoint just for it would add its hooks to every training step.

    Written once an epoch, as a serialisation is a measurable share of a small model's epoch: a
    validation at the epoch's end leaves it to the epoch's end, where Lightning takes its top-k
    decision; and when the best checkpoint was just saved at this very step, last.ckpt becomes a
    hard link to that file instead of a second serialisation.
    """

    def __init__(self, *args, save_last: bool = True, **kwargs):
        super().__init__(*args, save_last=False, **kwargs)  # last.ckpt is written below, every epoch
        self.keep_last = bool(save_last)
        # (step, best checkpoint) of the last.ckpt written: an epoch's top-k save may come after the
        # validation hook wrote last.ckpt (Lightning saves top-k at train-epoch end when validation runs
        # once an epoch), and last.ckpt must name the best that exists, or a resume tests a deleted file.
        self.last_saved: tuple[int, str] | None = None
        self.best_saved_at: tuple[int, str] | None = None  # (step, path) of the latest new best written

    # Lightning formats the state key into a label around each hook it calls (several a step);
    # its inputs are fixed in __init__, so it is computed once.
    @cached_property
    def state_key(self) -> str:
        return super().state_key

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = self.before_top_k()
        super().on_validation_end(trainer, pl_module)
        self.after_top_k(trainer, best)
        if not validating_at_epoch_end(trainer):  # else the epoch's end comes next and writes it
            self.save_last_checkpoint(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = self.before_top_k()
        super().on_train_epoch_end(trainer, pl_module)
        self.after_top_k(trainer, best)
        self.save_last_checkpoint(trainer)  # skipped when this epoch's validation wrote it with this best

    def before_top_k(self) -> str:
        if self.keep_last:  # in the best file's state too, which last.ckpt may become
            self.last_model_path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        return self.best_model_path

    def after_top_k(self, trainer: Trainer, best_before: str) -> None:
        if self.best_model_path and self.best_model_path != best_before:  # written by Lightning just now
            self.best_saved_at = (trainer.global_step, self.best_model_path)

    def save_last_checkpoint(self, trainer: Trainer) -> None:
        if (not self.keep_last or trainer.sanity_checking or trainer.fast_dev_run
                or trainer.state.fn != TrainerFn.FITTING
                or self.last_saved == (trainer.global_step, self.best_model_path)):
            return
        self.last_model_path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)  # before: it is saved
        if not (self.best_saved_at == (trainer.global_step, self.best_model_path)
                and self.link(trainer, self.best_model_path, self.last_model_path)):
            trainer.save_checkpoint(self.last_model_path, weights_only=self.save_weights_only)
        self.last_saved = (trainer.global_step, self.best_model_path)

    @staticmethod
    def link(trainer: Trainer, source: str, path: str) -> bool:
        """``path`` a hard link to ``source`` (rank 0 writes; every rank learns whether it could)."""
        return trainer.strategy.broadcast(link_atomic(source, path) if trainer.is_global_zero else True)
