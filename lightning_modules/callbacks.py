"""Callbacks: best and last checkpoints in one, an exponential moving average of the weights, and
the model summary (the TensorBoard pictures are in lightning_modules/pictures.py)."""

from __future__ import annotations

from functools import cached_property

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging as _LightningEMA
from lightning.pytorch.callbacks import ModelCheckpoint, RichModelSummary
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

    # Lightning formats the state key into a label around each hook it calls (~6 a step);
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
