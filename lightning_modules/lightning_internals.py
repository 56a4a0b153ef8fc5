"""The one place this project reads Lightning's internals. Lightning 2.6.6;
tests/test_lightning_internals.py fails when what is read here changes.

Three for speed, each worth a few percent of a small model's step or epoch on a CPU (benchmarks/overhead.py):

- ``logs_this_step``: a ``self.log`` call costs as much Python as a small model's whole training
  step (Lightning's result collection moves the entry's state to the value's device at every
  call), and Lightning writes a training step's logged values only every
  ``trainer.log_every_n_steps`` steps. So the per-step ``train/loss_step`` is logged only on the
  steps that are written; which ones those are, only the trainer's logger connector knows.
- ``QuickHookName``: around each of the dozens of hooks it calls per training step, Lightning
  sets ``pl_module._current_fx_name`` twice, and ``nn.Module.__setattr__`` asks each time whether
  the value is a parameter, buffer or submodule (a string never is).
- ``validating_at_epoch_end``: whether the validation now ending ran at the end of the training
  epoch (so the epoch's end comes next), read from the epoch loop's batch progress as Lightning's
  own ModelCheckpoint reads it: ``BestAndLastCheckpoint`` then writes last.ckpt once, at the
  epoch's end, instead of at both.

Two for resuming: ``open_csv_writer`` tells whether a CSVLogger has opened its metrics file
(lightning_modules/loggers.py keeps a resumed run's rows, which Lightning's would delete), and
``validates_after_this_batch`` whether fit validates right after the training batch now ending:
Lightning resumes a checkpoint of such a batch past that validation, so a signal's stop
(lightning_modules/run_guard.py) waits for it.
"""

from __future__ import annotations

from typing import Any

from lightning import Trainer


def logs_this_step(trainer: Trainer) -> bool:
    """Whether the loggers will write the values logged in this training step."""
    return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs


class QuickHookName:
    """Mixed into a LightningModule: the hook name Lightning records around every hook call is
    set as a plain attribute, without ``nn.Module.__setattr__``'s checks."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


def open_csv_writer(logger: Any) -> Any | None:
    """A CSVLogger's writer if it has made it (None before its first use)."""
    return logger._experiment


def validating_at_epoch_end(trainer: Trainer) -> bool:
    """Whether the validation running in fit came after the training epoch's last batch."""
    return bool(getattr(trainer.fit_loop.epoch_loop.batch_progress, "is_last_batch", False))


def validates_after_this_batch(trainer: Trainer) -> bool:
    """Whether fit validates once the training batch now ending is done (the epoch's last batch,
    or a ``val_check_interval``), as the training epoch loop decides it right after."""
    fetcher = trainer.fit_loop._data_fetcher
    return fetcher is not None and bool(trainer.fit_loop.epoch_loop._should_check_val_fx(fetcher))
