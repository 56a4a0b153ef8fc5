"""Resolvers of values that the configs compute from other values (registered when any module of
``experiments`` is imported; nothing heavy is imported: Hydra resolves them while composing).

- ``${task_monitor:TARGET,metric|mode}``: the metric a task module monitors by default
  (lightning_modules/task_table.py), so the composed config, its printout and every record name
  the metric that is really monitored.
- ``${from_data:FIELD}``: a value the model takes from the data (its number of classes, outputs,
  input channels, width or shape: experiments/config/pairing.py LINKS), as the data module declares
  it (datamodules/contract.py), so ``model=cnn`` fits a data set of 7 classes and RGB images.
- ``${slurm_gpus:ACCELERATOR,DEVICES}``: GPUs to ask SLURM for (none for a CPU trainer).
- ``${ddp_backend:ACCELERATOR}``: nccl on GPUs, gloo on CPUs.
- ``${config_groups:GROUP,...}``: ``GROUP: option, option`` for a script's --help (Hydra's own
  list would show every folder of conf/, most of which only experiments/run.py takes).
- ``${project_root:}``: the folder of this checkout (conf/paths: ``PROJECT_ROOT`` wins, e.g. a
  test's fresh project folder).
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from experiments.config import CONF_DIR
from experiments.config.pairing import data_declaration, link
from lightning_modules.task_table import TASKS


def task_monitor(target: str, field: str) -> str:
    task = TASKS.get(target)
    if task is None:  # another task module: import it to see (an import error says what is wrong)
        from hydra.utils import get_class

        task = getattr(get_class(target), "task", None)
    if task is None:
        raise ValueError(f"{target} is not a task module of this project (lightning_modules/task_table.py): "
                         "set monitor.metric and monitor.mode")
    metric, mode = task.monitor
    return {"metric": metric, "mode": mode}[field]


def from_data(field: str, *, _root_: Any) -> Any:
    data = _root_.get("data") if hasattr(_root_, "get") else None
    if data is None:
        raise ValueError(f"${{from_data:{field}}}: this config has no data to take it from")
    return link(data_declaration(data), field)


def slurm_gpus(accelerator: str, devices: Any) -> int | None:
    return int(devices) if str(accelerator) in ("gpu", "cuda") and str(devices).isdigit() else None


def ddp_backend(accelerator: str) -> str:
    return "nccl" if str(accelerator) in ("gpu", "cuda") else "gloo"


def config_groups(*groups: str) -> str:
    return "\n".join(f"{g}: {', '.join(sorted(p.stem for p in (CONF_DIR / g).glob('*.yaml')))}" for g in groups)


def project_root() -> str:
    return str(CONF_DIR.parent)


for name, resolver in (("task_monitor", task_monitor), ("from_data", from_data), ("slurm_gpus", slurm_gpus), ("ddp_backend", ddp_backend),
                       ("config_groups", config_groups), ("project_root", project_root)):
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, resolver)
