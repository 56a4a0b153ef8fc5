"""Torch threads for one job, so that the jobs a launcher runs at once share the cores."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from experiments.config.hydra_runtime import is_multirun


def threads_per_job(hydra_cfg: DictConfig | None, cores: int | None = None) -> int | None:
    """Torch threads for one job so that parallel jobs x threads <= cores.

    ``TORCH_NUM_THREADS`` wins; else joblib's ``n_jobs`` shares the cores, submitit's
    ``cpus_per_task`` is taken as is; else None (torch's default: all cores)."""
    if os.environ.get("TORCH_NUM_THREADS"):
        return max(1, int(os.environ["TORCH_NUM_THREADS"]))
    if hydra_cfg is None or not is_multirun(hydra_cfg):
        return None
    cores = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    launcher = hydra_cfg.launcher
    n_jobs = launcher.get("n_jobs")
    if n_jobs:  # joblib: -1 = one worker per core, -2 = all but one, ...
        workers = n_jobs if n_jobs > 0 else cores + 1 + n_jobs
        return max(1, cores // max(1, workers))
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    return None


def set_torch_threads() -> int | None:
    """Apply ``threads_per_job`` to this process (under Hydra); returns the number set."""
    from hydra.core.hydra_config import HydraConfig

    threads = threads_per_job(HydraConfig.get() if HydraConfig.initialized() else None)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return threads
