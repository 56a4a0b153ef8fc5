"""BestAndLastCheckpoint: the best checkpoint by the monitored metric, and a last.ckpt that is
rewritten at every epoch (the run folder resumes from it)."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_modules.callbacks import BestAndLastCheckpoint


class WorseEachEpoch(BoringModel):
    """Logs ``score`` = -epoch at validation: the best epoch is the first."""

    def validation_step(self, batch, batch_idx):
        self.log("score", -float(self.current_epoch))
        return super().validation_step(batch, batch_idx)


def fit(tmp_path, callback, **trainer_kwargs) -> dict[str, dict]:
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=1,
                        callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", **trainer_kwargs)
    trainer.fit(WorseEachEpoch())
    return {p.name: torch.load(p, weights_only=True) for p in sorted((tmp_path / "checkpoints").glob("*.ckpt"))}


def best_and_last(tmp_path, cls=BestAndLastCheckpoint):
    return cls(dirpath=tmp_path / "checkpoints", filename="epoch_{epoch:03d}", monitor="score", mode="max",
               save_top_k=1, save_last=True, auto_insert_metric_name=False, enable_version_counter=False)


def test_keeps_the_best_and_a_last_checkpoint_of_every_epoch(tmp_path):
    callback = best_and_last(tmp_path)
    saved = fit(tmp_path, callback)
    assert sorted(saved) == ["epoch_000.ckpt", "last.ckpt"]
    assert (saved["epoch_000.ckpt"]["epoch"], saved["last.ckpt"]["epoch"]) == (0, 3)
    assert saved["last.ckpt"]["global_step"] == 4 * 2
    assert "optimizer_states" in saved["last.ckpt"]  # a full checkpoint, to resume from
    assert not torch.equal(saved["epoch_000.ckpt"]["state_dict"]["layer.weight"],
                           saved["last.ckpt"]["state_dict"]["layer.weight"])
    assert callback.best_model_path.endswith("epoch_000.ckpt") and callback.last_model_path.endswith("last.ckpt")


def test_last_checkpoint_in_epochs_without_validation(tmp_path):
    saved = fit(tmp_path, best_and_last(tmp_path), check_val_every_n_epoch=3)  # validates after epoch 2 only
    assert saved["last.ckpt"]["epoch"] == 3 and saved["last.ckpt"]["global_step"] == 4 * 2
    assert sorted(saved) == ["epoch_002.ckpt", "last.ckpt"]


def test_lightnings_own_save_last_goes_stale_after_the_best_epoch(tmp_path):
    """Why the subclass exists: when Lightning's ModelCheckpoint(save_last=True) keeps last.ckpt
    current by itself, this fails, and BestAndLastCheckpoint can go."""
    saved = fit(tmp_path, best_and_last(tmp_path, ModelCheckpoint))
    assert saved["last.ckpt"]["epoch"] == 0


class BetterEachEpoch(BoringModel):
    """Logs ``score`` = epoch at validation: every epoch is the new best."""

    def validation_step(self, batch, batch_idx):
        self.log("score", float(self.current_epoch))
        return super().validation_step(batch, batch_idx)


def test_last_checkpoint_names_the_best_checkpoint_that_exists(tmp_path):
    # Validation once an epoch: Lightning saves the top-k at train-epoch end, after the validation
    # hook; a last.ckpt written before it named the best that the top-k save then deleted.
    callback = best_and_last(tmp_path)
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=1,
                        callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(BetterEachEpoch())
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in last["callbacks"].items() if k.startswith("BestAndLastCheckpoint")]
    assert state["best_model_path"].endswith("epoch_002.ckpt"), state["best_model_path"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt")) == ["epoch_002.ckpt", "last.ckpt"]


class CountSaves(L.Callback):
    """Counts the checkpoints serialised (the trainer's checkpoint IO) and notes, at each training
    batch's start, the global step of last.ckpt as it is then on disk."""

    def __init__(self, folder):
        self.folder, self.saves, self.last_at_batch_start = folder, 0, []

    def setup(self, trainer, pl_module, stage):
        io, counter = trainer.strategy.checkpoint_io, self

        class Counting(type(io)):
            def save_checkpoint(self, *args, **kwargs):
                counter.saves += 1
                return super().save_checkpoint(*args, **kwargs)

        io.__class__ = Counting

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        last = self.folder / "last.ckpt"
        self.last_at_batch_start.append(torch.load(last, weights_only=True)["global_step"] if last.is_file() else None)


def test_last_checkpoint_is_written_once_an_epoch_and_linked_to_a_best_of_the_same_step(tmp_path):
    import os

    folder = tmp_path / "checkpoints"
    for model, best_epoch in ((BetterEachEpoch(), 3), (WorseEachEpoch(), 0)):
        callback, counter = best_and_last(tmp_path), CountSaves(folder)
        trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=1,
                            callbacks=[callback, counter], logger=False, enable_progress_bar=False,
                            enable_model_summary=False, accelerator="cpu")
        trainer.fit(model)
        assert counter.saves == 4, "one serialisation an epoch"
        best = folder / f"epoch_{best_epoch:03d}.ckpt"
        assert os.path.samefile(best, folder / "last.ckpt") == (best_epoch == 3)
        assert torch.load(best, weights_only=True)["epoch"] == best_epoch  # a later last.ckpt left it whole
        assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 8
        for p in folder.glob("*"):
            p.unlink()


def test_a_validation_within_the_epoch_still_writes_last_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    counter = CountSaves(folder)
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=2, limit_train_batches=4, limit_val_batches=1,
                        val_check_interval=2, callbacks=[best_and_last(tmp_path), counter], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(WorseEachEpoch())
    # a validation within the epoch (after steps 2 and 6) writes it at once, before the next batch
    assert counter.last_at_batch_start == [None, None, 2, 2, 4, 4, 6, 6]
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 8
