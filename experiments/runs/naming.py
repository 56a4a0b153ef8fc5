"""The names of run and sweep folders, and the resolvers that make them (conf/folders/).

- ``${unique_dir:PARENT,NAME}``: a new folder under PARENT, named by its start time and NAME,
  created here with ``mkdir``, which succeeds for exactly one process: runs started in the same
  second, on this machine or another sharing the file system, never share one.
- ``${run_name:}``: what a run is, for its folder's name: ``<model>-<data>``, after
  ``<experiment>.`` when an experiment is chosen (``xor.xor-xor``); a group a sweep varies is left
  out of the sweep folder's name (its jobs' names show it).
- ``${job_dir_name:NUM}``: a sweep job's folder, its number and its swept values in the format
  of Hydra's override_dirname (``3_lr=0.01,seed=2``; ``hydra.job.config.override_dirname``'s
  kv_sep and item_sep), short and file-system safe; just NUM when the sweep varies nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config import overrides
from experiments.config.errors import describe_os_error
from experiments.runs import ownership

# What a sweep varies, written into its folder before its first job (experiments/sweeps/report.py):
# the names of its jobs' folders are made from it.
SWEEP_FILE = "sweep.json"


def unique_dir(parent: str, name: str = "") -> str:
    """``PARENT/<YYYY-MM-DD_HH-MM-SS>_<NAME>_<6 hex digits>`` (no ``_<NAME>`` part for an empty
    name), created here. The timestamp comes first, so folders sort by start time."""
    parent_dir = Path(parent)
    try:
        parent_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # checked before Hydra starts (experiments/config/command_line.py); a race since
        print(f"No run folder can be created under {parent} ({describe_os_error(error)}). Give a folder you can "
              "write to: paths.log_dir=FOLDER.", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    middle = f"_{name}" if name else ""
    while True:
        path = parent_dir / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}{middle}_{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        ownership.made(path)
        return str(path)


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


def _swept_groups(task: list[str]) -> set[str]:
    if not any("," in o or "(" in o for o in task):  # a single run: nothing to parse
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return {o.key_or_group for o in OverridesParser.create().parse_overrides(task) if o.is_sweep_override()}


def job_dir_name(num: Any, *, _root_: DictConfig) -> str:
    hydra_cfg = _root_.hydra
    dirname = hydra_cfg.job.config.override_dirname
    return sweep_job_dir(Path(str(hydra_cfg.sweep.dir)), int(num), list(hydra_cfg.overrides.task),
                         kv_sep=dirname.kv_sep, item_sep=dirname.item_sep).name


def sweep_job_dir(sweep_dir: Path, num: int, job_overrides: list[str], kv_sep: str = "=", item_sep: str = ",") -> Path:
    """The folder of job ``num`` of the sweep in sweep_dir, given the job's overrides: named by
    the values of the keys the sweep varies (which the SweepReport callback wrote to the sweep
    folder's sweep.json before the first job)."""
    try:
        swept = list(json.loads((sweep_dir / SWEEP_FILE).read_text())["swept"])
    except (OSError, ValueError, KeyError):
        swept = []
    return sweep_dir / job_folder_name(num, job_overrides, swept, kv_sep, item_sep)


def job_folder_name(num: int, job_overrides: list[str], swept: list[str], kv_sep: str = "=", item_sep: str = ",") -> str:
    """The folder of job ``num`` of a sweep over the keys ``swept``, given the job's overrides."""
    values = {overrides.key(o): o.split("=", 1)[1] for o in job_overrides if "=" in o}
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


# unique_dir is cached, like Hydra's ${now:}: every read of the run or sweep folder in this process,
# and in a multirun's jobs (Hydra copies the resolver cache into each job's config), gives one folder.
for name, resolver, cached in (("unique_dir", unique_dir, True), ("run_name", run_name, False),
                               ("job_dir_name", job_dir_name, False)):
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
