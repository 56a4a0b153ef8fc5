"""TaskModule and its tasks: the scalar tags each task logs, the epoch means, what the step
hooks return, and model.torch_compile."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from experiments import pipeline
from lightning_modules import ClassificationModule, RegressionModule
from lightning_modules.nets import MLP
from tests.conftest import compose_run

CLASSIFICATION = {"train/loss", "train/loss_step", "train/acc", "train/lr", "val/loss", "val/acc", "val/acc_best",
                  "test/loss", "test/acc"}
REGRESSION = {"train/loss", "train/loss_step", "train/lr", "val/loss", "val/loss_best", "test/loss"}


@pytest.mark.parametrize("overrides,tags", [
    (["model=xor", "data=xor"], CLASSIFICATION),
    (["model=linear", "data=regression"], REGRESSION | {"train/mse", "val/mse", "test/mse"}),  # L1: no mae
    (["model=linear", "data=regression", "model.loss=mse"], REGRESSION | {"train/mae", "val/mae", "test/mae"}),
    (["model=two_layer", "data=regression", "data.generator=random"],  # sum of squares: both
     REGRESSION | {f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("mse", "mae")}),
], ids=["xor", "linear-l1", "linear-mse", "two_layer-sse"])
def test_each_task_logs_exactly_the_agreed_scalar_tags(overrides, tags, tmp_path):
    pipeline.fit_and_test(compose_run([*overrides, "trainer.max_epochs=2", "trainer.log_every_n_steps=1"], tmp_path))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    logged = set(events.Tags()["scalars"]) - {"epoch"}  # Lightning's own epoch counter is not the task's
    assert logged == tags, (sorted(logged - tags), sorted(tags - logged))
    assert len(events.Scalars("train/loss")) == 2  # an epoch mean, once per epoch


def tiny_classification(n: int = 10, batch_size: int = 4) -> tuple[ClassificationModule, DataLoader]:
    torch.manual_seed(0)
    x, y = torch.randn(n, 2), torch.arange(n) % 3
    module = ClassificationModule(MLP(input_shape=[2], hidden=[4], num_classes=3),
                                  functools.partial(torch.optim.SGD, lr=0.0), num_classes=3)
    return module, DataLoader(TensorDataset(x, y), batch_size=batch_size)  # batches of 4, 4 and 2


def quiet_trainer(tmp_path, **kwargs) -> L.Trainer:
    return L.Trainer(default_root_dir=tmp_path, max_epochs=1, accelerator="cpu", logger=False,
                     enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False, **kwargs)


def test_epoch_means_weight_each_batch_by_its_size(tmp_path):
    module, loader = tiny_classification()
    trainer = quiet_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(module, loader, loader)  # lr=0: the weights, so each batch's loss, stay the same

    with torch.no_grad():
        x, y = loader.dataset.tensors
        per_sample = torch.nn.functional.cross_entropy(module(x), y, reduction="none")
        accuracy = (module(x).argmax(-1) == y).float().mean()
        per_batch = [per_sample[i:i + 4].mean() for i in (0, 4, 8)]
    for stage in ("train", "val"):
        assert trainer.callback_metrics[f"{stage}/loss"].item() == pytest.approx(per_sample.mean().item(), abs=1e-6)
        assert trainer.callback_metrics[f"{stage}/acc"].item() == pytest.approx(accuracy.item())
    assert per_sample.mean().item() != pytest.approx(torch.stack(per_batch).mean().item(), abs=1e-4)
    # The progress bar shows the (logged) step's loss and the epochs' losses and accuracies.
    assert {"train/loss_step", "train/loss", "train/acc", "val/loss", "val/acc"} <= set(trainer.progress_bar_metrics)


class KeepOutputs(L.Callback):
    def __init__(self):
        self.outputs: dict[str, list] = {"val": [], "test": []}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.outputs["val"].append((outputs, batch[1]))

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.outputs["test"].append((outputs, batch[1]))


def test_validation_and_test_steps_return_the_loss_and_the_predictions(tmp_path):
    """Callbacks (the pictures) read ``outputs["preds"]``: class indices, or regression outputs."""
    module, loader = tiny_classification()
    kept = KeepOutputs()
    trainer = quiet_trainer(tmp_path, callbacks=[kept])
    trainer.fit(module, loader, loader)
    trainer.test(module, loader, verbose=False)
    for stage in ("val", "test"):
        assert len(kept.outputs[stage]) == 3
        for outputs, y in kept.outputs[stage]:
            assert outputs["loss"].ndim == 0
            assert outputs["preds"].shape == y.shape and outputs["preds"].dtype == torch.long
            assert set(outputs["preds"].tolist()) <= {0, 1, 2}

    regression = RegressionModule(torch.nn.Linear(3, 2), functools.partial(torch.optim.SGD, lr=0.0), loss="mse")
    data = DataLoader(TensorDataset(torch.randn(6, 3), torch.randn(6, 2)), batch_size=4)
    kept = KeepOutputs()
    quiet_trainer(tmp_path, callbacks=[kept]).test(regression, data, verbose=False)
    for outputs, y in kept.outputs["test"]:
        assert outputs["preds"].shape == y.shape and not outputs["preds"].requires_grad


def test_predict_gives_class_probabilities(tmp_path):
    module, loader = tiny_classification()
    outputs = quiet_trainer(tmp_path).predict(module, loader)
    probabilities = torch.cat([o["preds"] for o in outputs])
    assert probabilities.shape == (10, 3)
    assert torch.equal(torch.cat([o["targets"] for o in outputs]), loader.dataset.tensors[1])  # from the same batches
    assert torch.allclose(probabilities.sum(-1), torch.ones(10))


def test_torch_compile_composes_and_compiles_the_net_in_place(tmp_path, monkeypatch):
    """model.torch_compile=true (it was model.compile, which shadowed nn.Module.compile) compiles
    the net when Lightning configures the model. Dynamo's "eager" backend stands in for
    inductor here: it traces the same graphs without the long code generation."""
    compiled, calls = [], []
    real_compile = torch.compile

    def eager_compile(fn, *args, **kwargs):
        compiled.append(fn)
        traced = real_compile(fn, *args, **{**kwargs, "backend": "eager"})
        return lambda *a, **k: calls.append(1) or traced(*a, **k)

    monkeypatch.setattr(torch, "compile", eager_compile)
    cfg = compose_run(["model=xor", "data=xor", "model.torch_compile=true", "trainer.max_epochs=2"], tmp_path)
    assert instantiate(cfg.model).torch_compile is True
    metrics = pipeline.fit_and_test(cfg)

    assert len(compiled) == 1, "compiled once, though Lightning configures the model for fit and for test"
    assert compiled[0].__self__.__class__.__name__ == "SimpleClassifier"  # the net's own call, in place
    state = torch.load(metrics["best_model_path"], weights_only=True)["state_dict"]
    assert "net.linear1.weight" in state  # the plain net's keys: evaluate.py loads it uncompiled
    assert len(calls) > 2 * 8, "every forward pass (2 epochs of 8 steps, validation, test) goes through it"


def test_training_metrics_are_updated_once_an_epoch_with_every_step(tmp_path, monkeypatch):
    """A torchmetrics update costs ~50 us of Python: the training steps' inputs are kept and given
    to each training metric in one update at the epoch's end (the epoch means above stay exact)."""
    module, loader = tiny_classification()
    calls = []
    for metric in (module.train_acc, module.train_loss, module.val_acc):
        update = metric.update
        monkeypatch.setattr(metric, "update", lambda *args, _m=metric, _u=update: calls.append((_m, len(args[0])))
                            or _u(*args))
    quiet_trainer(tmp_path, num_sanity_val_steps=0).fit(module, loader, loader)
    assert [n for m, n in calls if m is module.train_acc] == [10]  # 3 steps, 10 samples, one update
    assert [n for m, n in calls if m is module.train_loss] == [10]
    assert [n for m, n in calls if m is module.val_acc] == [4, 4, 2]  # validation: at each step
    assert module.pending_updates == {}
