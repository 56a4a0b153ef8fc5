"""What the per-step and per-epoch fast paths must keep doing right (benchmarks/overhead.py
measures their speed; these check their behaviour)."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn

from experiments import utils
from lightning_modules import ClassificationModule
from lightning_modules.callbacks import ImagePredictionGrid
from lightning_modules.nets import MLP
from lightning_modules.profiler import NullProfiler
from tests.conftest import compose_run


def test_trainer_profiles_nothing_by_default_and_takes_lightnings_profilers(tmp_path):
    default = instantiate(compose_run([], tmp_path).trainer)
    assert isinstance(default.profiler, NullProfiler)
    assert default.profiler.profile("a") is default.profiler.profile("b")  # one shared context, no new object
    with default.profiler.profile("a"), default.profiler.profile("b"):  # and it nests
        pass
    simple = instantiate(compose_run(["trainer.profiler=simple"], tmp_path).trainer)
    assert isinstance(simple.profiler, SimpleProfiler)


@pytest.mark.skipif(torch.cuda.is_available() or not torch.backends.cuda.is_built(),
                    reason="needs a CUDA build of torch on a machine without a GPU")
def test_no_gpu_probe_per_optimizer_step_without_a_gpu(monkeypatch):
    """Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 makes each optimizer step ask NVML for GPUs;
    after skip_gpu_probe_without_gpu the question is answered without asking."""
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls = []
    real = torch.cuda._raw_device_count_nvml
    monkeypatch.setattr(torch.cuda, "_raw_device_count_nvml", lambda: calls.append(1) or real())
    net = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(net.parameters())  # Adam(W), unlike SGD, runs the health check

    def step():
        net(torch.ones(1, 2)).sum().backward()
        optimizer.step()

    step()
    probed = len(calls)
    utils.skip_gpu_probe_without_gpu()
    assert torch.cuda.is_available() is False
    calls.clear()
    for _ in range(3):
        step()
    assert calls == [] and probed > 0  # it used to probe at every step
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == ""


def test_gpu_probe_fix_leaves_a_set_cuda_visible_devices_alone(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    utils.skip_gpu_probe_without_gpu()
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == "0"


def test_training_epoch_means_weight_each_batch_by_its_size():
    module = ClassificationModule(MLP(hidden=[4]), functools.partial(torch.optim.SGD, lr=0.1))
    module._accumulate("train/loss", torch.tensor(1.0), 3, weight=3)
    module._accumulate("train/loss", torch.tensor(5.0), 1, weight=1)
    module._accumulate("train/acc", torch.tensor(2), 3)
    module._accumulate("train/acc", torch.tensor(1), 1)
    total, count = module._epoch_sums["train/loss"]
    assert (total / count).item() == pytest.approx(2.0)  # (3*1 + 1*5) / 4, not (1 + 5) / 2
    total, count = module._epoch_sums["train/acc"]
    assert (total / count).item() == pytest.approx(0.75)


def test_task_module_attributes_still_register_parameters_and_submodules():
    module = ClassificationModule(MLP(hidden=[4]), functools.partial(torch.optim.SGD, lr=0.1))
    before = len(list(module.parameters()))
    module.extra = nn.Linear(2, 2)
    assert len(list(module.parameters())) == before + 2
    module._current_fx_name = "training_step"  # Lightning's per-hook bookkeeping: a plain attribute
    assert module._current_fx_name == "training_step" and "_current_fx_name" not in module._modules


def test_prediction_picture_frames_each_tile_green_when_right_red_when_wrong():
    callback = ImagePredictionGrid(num_images=10, scale=2)
    images = torch.full((10, 1, 28, 28), 128, dtype=torch.uint8)
    targets = torch.arange(10)
    preds = targets.clone()
    preds[3] = 4  # one wrong
    grid = callback.grid(images, preds, targets, [f"c{i}" for i in range(10)])
    size, pad = 28 * 2, callback.padding
    assert grid.shape == (3, 2 * (size + pad) + pad, 8 * (size + pad) + pad)  # 10 tiles, 8 to a row
    for i in range(10):
        row, col = divmod(i, 8)
        y, x = pad + row * (size + pad), pad + col * (size + pad)
        bottom_right = grid[:, y + size - 1, x + size - 1].tolist()  # on the frame, clear of the label
        assert bottom_right == ([255, 0, 0] if i == 3 else [0, 255, 0]), (i, bottom_right)


def test_one_checkpoint_callback_keeps_the_best_and_a_true_last(tmp_path):
    """Best by monitor (here: the earliest epoch), and last.ckpt rewritten every epoch after it."""
    from experiments import pipeline

    cfg = compose_run(["experiment=xor", "trainer.max_epochs=4", "monitor.metric=epoch", "monitor.mode=min",
                       "test=false"], tmp_path)
    pipeline.train(cfg)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch_000.ckpt", "last.ckpt"], names
    best = torch.load(tmp_path / "checkpoints" / "epoch_000.ckpt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert (best["epoch"], last["epoch"]) == (0, 3)
    assert not torch.equal(best["state_dict"]["net.linear1.weight"], last["state_dict"]["net.linear1.weight"])
