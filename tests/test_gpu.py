"""The GPU path: data held on the device, batches augmented there, fp32 and bf16-mixed training,
and a GPU checkpoint that evaluates on the CPU. Skipped on machines without a GPU (CI has none)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from lightning import Callback

from datamodules.augment import BatchAugment
from experiments import pipeline
from tests.conftest import compose_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

GPU = ["trainer.accelerator=gpu", "data.on_device=true"]


class DeviceProbe(Callback):
    """Records where the data, the training batches and the weights live."""

    seen: dict[str, set[str]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        x, _ = batch
        seen = DeviceProbe.seen
        seen.setdefault("data", set()).add(trainer.datamodule.splits["train"][0].device.type)
        seen.setdefault("batch", set()).add(x.device.type)
        seen.setdefault("weights", set()).add(next(pl_module.parameters()).device.type)
        seen.setdefault("batch_dtype", set()).add(str(x.dtype))


def test_batch_augment_runs_on_the_gpu_and_follows_its_generator():
    x = torch.rand(64, 1, 28, 28, device="cuda") + 1.0
    augment = BatchAugment(crop_padding=2, hflip_p=0.5, erasing_p=0.5)
    a = augment(x, torch.Generator("cuda").manual_seed(0))
    b = augment(x, torch.Generator("cuda").manual_seed(0))
    assert a.device.type == "cuda" and a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x) and a.min() >= 0 and a.max() <= x.max()


@pytest.mark.parametrize("recipe,precision", [("fashion_fast", "32"), ("fashion_best", "bf16-mixed")])
def test_recipe_trains_on_the_gpu_and_its_checkpoint_evaluates_on_the_cpu(recipe, precision, fake_fashion, tmp_path):
    DeviceProbe.seen = {}
    cfg = compose_run([f"experiment={recipe}", *fake_fashion, *GPU, f"trainer.precision={precision}",
                       "data.batch_size=64", "data.eval_batch_size=100", "trainer.max_epochs=3",
                       "+callbacks.probe._target_=tests.test_gpu.DeviceProbe"], tmp_path / "gpu")
    metrics = pipeline.fit_and_test(cfg)
    assert DeviceProbe.seen == {"data": {"cuda"}, "batch": {"cuda"}, "weights": {"cuda"},
                                "batch_dtype": {"torch.float32"}}
    assert metrics["test/acc"] > 0.3, metrics  # 10 classes: it learned
    assert metrics["train/loss"] < 2.3

    checkpoint = torch.load(metrics["best_model_path"], map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())
    evaluated = pipeline.evaluate(compose_run([f"ckpt_path={metrics['best_model_path']}"], tmp_path / "eval",
                                              config_name="evaluate"))  # trainer.accelerator=cpu
    tolerance = 0.02 if precision == "bf16-mixed" else 0.005
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=tolerance)


def test_predict_on_the_gpu_writes_every_test_prediction(fake_fashion, tmp_path):
    cfg = compose_run(["experiment=fashion_fast", *fake_fashion, *GPU, "data.batch_size=64",
                       "trainer.max_epochs=1"], tmp_path / "gpu")
    metrics = pipeline.fit_and_test(cfg)
    out = pipeline.predict(compose_run([f"ckpt_path={metrics['best_model_path']}", "trainer.accelerator=gpu"],
                                       tmp_path / "predict", config_name="predict"))
    rows = list(csv.DictReader(Path(out).open()))
    assert len(rows) == 200  # the fake test split
    assert all(abs(sum(float(v) for k, v in r.items() if k.startswith("p[")) - 1) < 1e-3 for r in rows)
