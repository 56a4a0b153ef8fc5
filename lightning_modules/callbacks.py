"""Callbacks: best and last checkpoints in one, an exponential moving average of the weights, and
the model summary (the TensorBoard pictures are in lightning_modules/pictures.py)."""

from __future__ import annotations

import contextlib
import os
from functools import cached_property

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging as _LightningEMA
from lightning.pytorch.callbacks import ModelCheckpoint, RichModelSummary
from lightning.pytorch.trainer.states import TrainerFn

from lightning_modules.lightning_internals import validating_at_epoch_end


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (the ``save_top_k`` best by ``monitor``) that also writes
    ``last.ckpt`` at the end of every validated epoch (every training epoch when there is no
    validation), to resume from.

    Lightning 2.6's own ``save_last=True`` rewrites last.ckpt only in epochs that also save a
    top-k checkpoint, so after the best epoch it goes stale; here it is written through
    ``trainer.save_checkpoint``, so through the trainer's checkpoint IO (atomic in a run folder).
    A second ModelCheckpoint just for it would add its hooks to every training step.

    Written once an epoch: a validation at the epoch's end leaves it to the epoch's end, where
    Lightning takes its top-k decision; and when the best checkpoint was just saved at this very
    step, last.ckpt becomes a hard link to that file instead of a second serialisation (each costs
    20-60 ms for a 670k-parameter MLP with Adam, 1-3% of its epoch on a 2-core CPU).
    """

    def __init__(self, *args, save_last: bool = True, **kwargs):
        super().__init__(*args, save_last=False, **kwargs)  # last.ckpt is written below, every epoch
        self.keep_last = bool(save_last)
        # (step, best checkpoint) of the last.ckpt written: an epoch's top-k save may come after the
        # validation hook (Lightning saves top-k at train-epoch end when validation runs once an
        # epoch), and last.ckpt must name the best that exists, or a resume tests a deleted file.
        self.last_saved: tuple[int, str] | None = None
        self.best_saved_at: tuple[int, str] | None = None  # (step, path) of the latest new best written

    # Lightning formats the state key into a label around each hook it calls (~6 a step);
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
        """``path`` made a hard link to ``source`` (the same checkpoint, saved at this step),
        atomically; False where the file system cannot (then the caller writes it)."""
        done = True
        if trainer.is_global_zero:
            tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}.link"
            try:
                os.link(source, tmp)
                os.replace(tmp, path)
            except OSError:  # no hard links here (a remote or odd file system)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                done = False
        return trainer.strategy.broadcast(done)


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


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary without its FLOPs column and total when they are 0.

    Lightning counts FLOPs only by running the module's ``example_input_array``; these task
    modules leave the input to the data module, so every FLOPs figure, and the total, read 0.
    """

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        if total_flops:
            return RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                              total_training_modes, total_flops, **summarize_kwargs)
        from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, style="dim" if name == " " else None,
                             justify="right" if name in ("Params", "Params per Device") else "left")
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        totals = Table.grid(expand=True)
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(total_parameters - trainable_parameters))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            totals.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(totals)
