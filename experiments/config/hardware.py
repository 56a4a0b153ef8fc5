"""What this machine has, for the trainer's settings: its GPUs and cores (counted without
initialising CUDA), and the per-step GPU probe that a machine without a GPU is spared."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from experiments.config.errors import ConfigError

log = logging.getLogger(__name__)


def check_hardware(trainer: DictConfig, accelerator: str) -> None:
    gpus = visible_gpus() if accelerator in ("gpu", "cuda", "auto") else 0
    if accelerator in ("gpu", "cuda") and gpus == 0:
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; "
                          "use trainer=cpu or trainer.accelerator=auto.")
    if str(trainer.get("precision")) == "16-mixed" and gpus == 0:
        log.warning("trainer.precision=16-mixed needs a GPU: on the CPU Lightning runs bf16-mixed instead")
    check_devices(trainer.get("devices", "auto"), "gpu" if accelerator != "cpu" and gpus else "cpu", gpus)


def visible_gpus() -> int:
    """CUDA GPUs this process may use, counted without initialising CUDA (and without importing
    torch on a machine with no NVIDIA driver)."""
    if not (Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidia0").exists()):
        return 0
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # ask NVML, as Lightning does
    import torch

    return torch.cuda.device_count()


def check_devices(devices: Any, kind: str, gpus: int) -> None:
    """``trainer.devices`` within what the machine has: GPUs, or processes on the CPU cores.
    Under SLURM each task is one device on its node, so SLURM's allocation decides."""
    if os.environ.get("SLURM_NTASKS") or devices in ("auto", -1, "-1"):
        return
    have = gpus if kind == "gpu" else len(os.sched_getaffinity(0))
    what = f"{have} GPU{'s' if have != 1 else ''}" if kind == "gpu" else f"{have} CPU core{'s' if have != 1 else ''}"
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    if isinstance(devices, int):
        if devices < 1 or devices > have:
            raise ConfigError(f"trainer.devices={devices} is not allowed: this machine has {what}; use 1 to {have}, "
                              "or auto (-1) for all of them.")
    elif isinstance(devices, ListConfig | list):
        bad = [d for d in devices if not isinstance(d, int) or not 0 <= d < have]
        if bad or kind != "gpu":
            raise ConfigError(f"trainer.devices={list(devices)} is not allowed: a list names GPU indices, and this "
                              f"machine has {what} (indices 0 to {have - 1}).")


def skip_gpu_probe_without_gpu() -> None:
    """Stop a per-step GPU probe on machines without a GPU.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (so that forking stays safe),
    and with it, on a CUDA build of torch and no GPU, every ``optimizer.step()`` asks NVML
    afresh whether a GPU has appeared (torch's graph-capture health check): a failing dlopen of
    libnvidia-ml at every step, which a loop without Lightning never pays (benchmarks/overhead.py).
    With no GPU there is nothing to hide, and an empty ``CUDA_VISIBLE_DEVICES`` answers at once.
    """
    import torch

    if "CUDA_VISIBLE_DEVICES" not in os.environ and not torch.cuda.is_available():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
