"""Resolvers the configs use, registered when any module of ``experiments`` is imported.

- ``${unique_dir:PARENT,NAME}``: a new run (or sweep) folder under PARENT, named by its start
  time and NAME (experiments/run_folder.py).
- ``${run_name:}``: what a run is, for its folder's name: ``<model>-<data>``, after
  ``<experiment>.`` when an experiment is chosen (``xor.xor-xor``); a group a sweep varies is left
  out of the sweep folder's name (its jobs' names show it).
- ``${job_dir_name:NUM}``: a sweep job's folder, its number and its swept values in the format
  of Hydra's override_dirname (``3_lr=0.01,seed=2``; ``hydra.job.config.override_dirname``'s
  kv_sep and item_sep), short and file-system safe; just NUM when the sweep varies nothing.
- ``${slurm_gpus:ACCELERATOR,DEVICES}``: GPUs to ask SLURM for (none for a CPU trainer).
- ``${ddp_backend:ACCELERATOR}``: nccl on GPUs, gloo on CPUs.
- ``${task_monitor:TARGET,metric|mode}``: the metric a task module monitors by default
  (``val/acc``/max for classification, ``val/loss``/min for regression), so the composed
  config, its printout and every record name the metric that is really monitored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.run_folder import unique_dir


# Hydra resolves this while composing, before it sets up logging: importing Lightning then
# would detach Lightning's loggers from the run's log file (and slow --help), so the project's
# task modules are named here (tests/test_configs.py checks this against their default_monitor).
KNOWN_MONITORS = {
    "lightning_modules.ClassificationModule": ("val/acc", "max"),
    "lightning_modules.RegressionModule": ("val/loss", "min"),
    "lightning_modules.ManualBackpropRegression": ("val/loss", "min"),
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


MAX_NAME = 80  # characters of a folder name's descriptive part


def safe_name(text: str) -> str:
    """``text`` as one short folder name: no ``/``, no spaces or shell quoting, at most MAX_NAME."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text)[:MAX_NAME].strip("-")


def run_name(*, _root_: DictConfig) -> str:
    hydra_cfg = _root_.hydra
    choices = hydra_cfg.runtime.choices
    swept = _swept_groups(list(hydra_cfg.overrides.task))
    model, data = (choices.get(g) if g not in swept else None for g in ("model", "data"))
    name = "-".join(str(c) for c in (model, data) if c is not None)
    experiment = choices.get("experiment")
    if experiment is not None and "experiment" not in swept:
        name = f"{experiment}.{name}" if name else str(experiment)
    return safe_name(name.replace("/", "-"))


def _swept_groups(overrides: list[str]) -> set[str]:
    if not any("," in o or "(" in o for o in overrides):  # a single run: nothing to parse
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return {o.key_or_group for o in OverridesParser.create().parse_overrides(overrides) if o.is_sweep_override()}


def job_dir_name(num: Any, *, _root_: DictConfig) -> str:
    hydra_cfg = _root_.hydra
    dirname = hydra_cfg.job.config.override_dirname
    return sweep_job_dir(Path(str(hydra_cfg.sweep.dir)), int(num), list(hydra_cfg.overrides.task),
                         kv_sep=dirname.kv_sep, item_sep=dirname.item_sep).name


def sweep_job_dir(sweep_dir: Path, num: int, overrides: list[str], kv_sep: str = "=", item_sep: str = ",") -> Path:
    """The folder of job ``num`` of the sweep in sweep_dir, given the job's overrides: named by
    the values of the keys the sweep varies (which the SweepReport callback wrote to the sweep
    folder's sweep.json before the first job)."""
    from experiments.sweep_report import SWEEP_FILE

    try:
        swept = list(json.loads((sweep_dir / SWEEP_FILE).read_text())["swept"])
    except (OSError, ValueError, KeyError):
        swept = []
    return sweep_dir / job_folder_name(num, overrides, swept, kv_sep, item_sep)


def job_folder_name(num: int, overrides: list[str], swept: list[str], kv_sep: str = "=", item_sep: str = ",") -> str:
    """The folder of job ``num`` of a sweep over the keys ``swept``, given the job's overrides."""
    values = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in overrides if "=" in o}
    keys = sorted(k for k in swept if k in values)  # sorted, as Hydra's override_dirname
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    items = [safe_name(f"{n}{kv_sep}{_short(values[k])}") for n, k in zip(names, keys)]
    described = items[0] if items else ""
    for item in items[1:]:  # whole items only: a value cut short would read as another value
        if len(described) + len(item_sep) + len(item) > MAX_NAME:
            break
        described += item_sep + item
    return f"{num}_{described}" if described else str(num)


def _short(value: str) -> str:
    """A long float (Optuna's 0.02981377030705272) to 4 significant digits, a value as typed
    (1.0, 1e-05) as it is; the job number keeps folders apart, and the full value is in the
    job's .hydra/overrides.yaml."""
    try:
        return f"{float(value):.4g}" if len(value) > 8 and any(c in value for c in ".eE") else value
    except ValueError:
        return value


# Cached, like Hydra's ${now:}: every read of the run or sweep folder in this process, and in a
# multirun's jobs (Hydra copies the resolver cache into each job's config), gives the same folder.
for name, resolver, cached in (("unique_dir", unique_dir, True), ("task_monitor", task_monitor, False),
                               ("slurm_gpus", slurm_gpus, False), ("ddp_backend", ddp_backend, False),
                               ("run_name", run_name, False), ("job_dir_name", job_dir_name, False)):
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
