"""Resolvers the configs use, registered when any module of ``experiments`` is imported.

- ``${unique_dir:PARENT}``: a new run (or sweep) folder under PARENT (experiments/run_folder.py).
- ``${slurm_gpus:ACCELERATOR,DEVICES}``: GPUs to ask SLURM for (none for a CPU trainer).
- ``${ddp_backend:ACCELERATOR}``: nccl on GPUs, gloo on CPUs.
- ``${task_monitor:TARGET,metric|mode}``: the metric a task module monitors by default
  (``val/acc``/max for classification, ``val/loss``/min for regression), so the composed
  config, its printout and every record name the metric that is really monitored.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from experiments.run_folder import unique_dir


# Hydra resolves this while composing, before it sets up logging: importing Lightning then
# would detach Lightning's loggers from the run's log file (and slow --help), so the project's
# task modules are named here (tests/test_configs.py checks this against their default_monitor).
KNOWN_MONITORS = {
    "lightning_modules.ClassificationModule": ("val/acc", "max"),
    "lightning_modules.RegressionModule": ("val/loss", "min"),
}


def task_monitor(target: str, field: str) -> str:
    if target in KNOWN_MONITORS:
        metric, mode = KNOWN_MONITORS[target]
    else:  # another task module: ask it
        from hydra.utils import get_class

        metric, mode = get_class(target).default_monitor
    return {"metric": metric, "mode": mode}[field]


def slurm_gpus(accelerator: str, devices: Any) -> int | None:
    return int(devices) if str(accelerator) in ("gpu", "cuda") and str(devices).isdigit() else None


def ddp_backend(accelerator: str) -> str:
    return "nccl" if str(accelerator) in ("gpu", "cuda") else "gloo"


# Cached, like Hydra's ${now:}: every read of the run or sweep folder in this process, and in a
# multirun's jobs (Hydra copies the resolver cache into each job's config), gives the same folder.
for name, resolver, cached in (("unique_dir", unique_dir, True), ("task_monitor", task_monitor, False),
                               ("slurm_gpus", slurm_gpus, False), ("ddp_backend", ddp_backend, False)):
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
