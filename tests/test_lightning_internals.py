"""lightning_modules/lightning_internals.py reads Lightning's private logger connector: these
tests fail when what it relies on changes (then replace it, or drop the speed trick)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from lightning_modules.lightning_internals import (
    QuickHookName,
    logs_this_step,
    validates_after_this_batch,
)


class LogsEveryStep(BoringModel):
    """Logs ``every`` at every step, and notes the steps that logs_this_step says are written."""

    def __init__(self, manual: bool = False):
        super().__init__()
        self.automatic_optimization = not manual
        self.said_written: list[int] = []

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            output = super().training_step(batch, batch_idx)
        else:
            optimizer = self.optimizers()
            output = {"loss": self.step(batch)}
            self.manual_backward(output["loss"])
            optimizer.step()
            optimizer.zero_grad()
        if logs_this_step(self.trainer):
            self.said_written.append(self.trainer.global_step)
        self.log("every", float(batch_idx), on_step=True, on_epoch=False)
        return output


@pytest.mark.parametrize("manual,accumulate", [(False, 1), (False, 2), (True, 1)],
                         ids=["automatic", "accumulated", "manual"])
def test_logs_this_step_is_true_exactly_on_the_steps_the_logger_writes(tmp_path, manual, accumulate):
    model = LogsEveryStep(manual)
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=2, limit_train_batches=12, limit_val_batches=0,
                        log_every_n_steps=3, logger=CSVLogger(tmp_path), enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        **({} if manual else {"accumulate_grad_batches": accumulate}))
    trainer.fit(model)
    rows = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    written = [int(row.split(",")[header.index("step")]) for row in rows[1:]
               if row.split(",")[header.index("every")]]
    assert written, "the logger wrote no training step"
    assert len(written) < trainer.global_step, "every step was written: log_every_n_steps=3 has no effect"
    # Written steps, as the logger numbers them: the step at which each was noted (manual
    # optimization has stepped already by then, so it notes one more; with accumulated gradients
    # every micro-batch of a written step is noted, and the last one's value is written).
    assert sorted({s - manual for s in model.said_written}) == written
    assert len(model.said_written) == accumulate * len(written)


def test_logs_this_step_is_always_true_under_fast_dev_run(tmp_path):
    model = LogsEveryStep()
    trainer = L.Trainer(default_root_dir=tmp_path, fast_dev_run=3, log_every_n_steps=50, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model)
    assert model.said_written == [0, 1, 2]
    assert torch.is_tensor(trainer.callback_metrics["every"])


class NamesItsHooks(QuickHookName, BoringModel):
    """Notes the hook name Lightning has set when it calls training_step, and logs there."""

    def training_step(self, batch, batch_idx):
        self.seen = self._current_fx_name
        self.log("loss_here", 1.0)
        return super().training_step(batch, batch_idx)


def test_quick_hook_name_is_what_lightning_sets_around_each_hook(tmp_path, monkeypatch):
    """Lightning still names the running hook in ``_current_fx_name`` (self.log reads it), and
    with QuickHookName it no longer goes through nn.Module.__setattr__."""
    through_module = []
    real = torch.nn.Module.__setattr__

    def counting(self, name, value):
        if name == "_current_fx_name":
            through_module.append(value)
        real(self, name, value)

    monkeypatch.setattr(torch.nn.Module, "__setattr__", counting)
    plain, quick = BoringModel(), NamesItsHooks()
    for model in (plain, quick):
        trainer = L.Trainer(default_root_dir=tmp_path, max_steps=2, limit_val_batches=0, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            accelerator="cpu")
        before = len(through_module)
        trainer.fit(model)
        if model is plain:
            assert len(through_module) - before > 20, "Lightning no longer sets _current_fx_name per hook"
        else:
            assert len(through_module) == before, "QuickHookName no longer takes the hook name"
    assert quick.seen == "training_step" and quick._current_fx_name is None
    assert "loss_here" in trainer.callback_metrics
    quick.layer2 = torch.nn.Linear(2, 2)  # any other attribute is still a module's
    assert "layer2" in dict(quick.named_children())


def test_open_csv_writer_is_none_until_the_csv_logger_opens_its_file(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from lightning_modules.lightning_internals import open_csv_writer

    logger = CSVLogger(tmp_path, name="", version="")
    assert open_csv_writer(logger) is None
    writer = logger.experiment
    assert open_csv_writer(logger) is writer and hasattr(writer, "metrics")


def test_validating_at_epoch_end_tells_an_epoch_end_validation_from_one_within_the_epoch(tmp_path):
    from lightning_modules.lightning_internals import validating_at_epoch_end

    seen = []

    class Note(L.Callback):
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                seen.append((trainer.global_step, validating_at_epoch_end(trainer)))

    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=2, limit_train_batches=4, limit_val_batches=1,
                        val_check_interval=2, callbacks=[Note()], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu")
    trainer.fit(BoringModel())
    assert seen == [(2, False), (4, True), (6, False), (8, True)]


class NotesValidationAhead(L.Callback):
    """Notes (epoch, batch) of each training batch that validates_after_this_batch marks, and of
    each training batch that a validation actually followed."""

    def __init__(self):
        self.said: list[tuple[int, int]] = []
        self.validated_after: list[tuple[int, int]] = []
        self.last_batch: tuple[int, int] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.last_batch = (trainer.current_epoch, batch_idx)
        if validates_after_this_batch(trainer):
            self.said.append(self.last_batch)

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated_after.append(self.last_batch)


@pytest.mark.parametrize("settings,validated", [
    ({}, [(0, 5), (1, 5)]),
    ({"val_check_interval": 3}, [(0, 2), (0, 5), (1, 2), (1, 5)]),
    ({"check_val_every_n_epoch": 2}, [(1, 5)]),
    ({"limit_val_batches": 0}, []),
], ids=["epoch-end", "val-check-interval", "every-2nd-epoch", "no-validation"])
def test_validates_after_this_batch_marks_exactly_the_batches_that_validation_follows(tmp_path, settings, validated):
    notes = NotesValidationAhead()
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=2, limit_train_batches=6, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[notes],
                        **{"limit_val_batches": 2, **settings})
    trainer.fit(BoringModel())
    assert notes.validated_after == validated
    assert notes.said == validated

