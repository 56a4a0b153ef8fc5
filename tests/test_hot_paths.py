"""What the per-step and per-epoch fast paths must keep doing right (benchmarks/overhead.py
measures their speed; these check their behaviour)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn

from experiments.config import hardware
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
    hardware.skip_gpu_probe_without_gpu()
    assert torch.cuda.is_available() is False
    calls.clear()
    for _ in range(3):
        step()
    assert calls == [] and probed > 0  # it used to probe at every step
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == ""


def test_gpu_probe_fix_leaves_a_set_cuda_visible_devices_alone(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    hardware.skip_gpu_probe_without_gpu()
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == "0"
