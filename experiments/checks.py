"""Checks that run before anything is built, so that bad input fails in a second with one
paragraph naming the key, the bad value and what is allowed.

- ``validate_config``: the composed config against the schemas (experiments/schema.py) and
  the values no type can express (lr > 0, epochs >= 1, devices this machine has, a monitored
  metric the task logs). experiments/command_line.py runs it before Hydra starts (no run folder,
  no torch import); the pipeline runs it again in each job, where a sweep's bad value is a
  failed row and a resume's bad value a failed attempt in its record.
- ``check_pairing``: the built model against the built data (needs torch).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.schema import SCHEMAS, conforms, describe

log = logging.getLogger(__name__)

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
UNRESOLVED = object()  # a value that cannot be resolved before Hydra runs (${hydra:...}, ???)


class ConfigError(ValueError):
    pass


# ---------------------------------------------------------------- the composed config

def value_of(node: DictConfig | ListConfig, key: Any) -> Any:
    try:
        return node[key]
    except OmegaConfBaseException:
        return UNRESOLVED


def check_types(node: DictConfig, path: str = "") -> None:
    """Every key of every object node is an argument of its ``_target_`` and has its type."""
    schema = SCHEMAS.get(str(node.get("_target_", "")))
    hints = typing.get_type_hints(schema, include_extras=True) if schema else {}
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        if schema and not (key.startswith("_") and key.endswith("_")):
            if key not in hints:
                raise ConfigError(unknown_key(full, list(hints), f"{node._target_} has no argument {key!r}"))
            value = value_of(node, key)
            if value is not UNRESOLVED and not conforms(value, hints[key]):
                raise ConfigError(f"{full}={show(value)} is not allowed: {full} takes {describe(hints[key])} "
                                  f"(the argument {key} of {node._target_}).")
        child = value_of(node, key)
        if isinstance(child, DictConfig):
            check_types(child, full)


def show(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        return str(OmegaConf.to_container(value))
    return repr(value) if isinstance(value, str) else str(value)


def unknown_key(full: str, known: list[str], why: str, elsewhere: list[str] = ()) -> str:
    """The message for a key that is not there: the close match among its siblings, else a key of
    that name elsewhere in the config (``max_epochs`` -> ``trainer.max_epochs``), else the choices."""
    parent, _, key = full.rpartition(".")
    close = [f"{parent + '.' if parent else ''}{k}" for k in difflib.get_close_matches(key, known, n=1, cutoff=0.6)]
    close = close or difflib.get_close_matches(key, [p.rpartition(".")[2] for p in elsewhere], n=1, cutoff=0.8)
    close = [next(p for p in elsewhere if p.rpartition(".")[2] == close[0])] if close and "." not in close[0] else close
    hint = f"Did you mean {close[0]}?" if close else f"{parent or 'The config'} takes: {', '.join(known)}."
    return f"{full} is not a setting ({why}). {hint}"


def validate_config(cfg: DictConfig, this_machine: bool = True) -> None:
    """The whole composed config of experiments/run.py (or a run config that evaluate.py tests).
    ``this_machine=False``: the run goes to other machines (a SLURM job): their GPUs and cores
    are not this one's to count."""
    check_types(cfg)
    seed = value_of(cfg, "seed") if "seed" in cfg else None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ConfigError(f"seed={seed!r} is not allowed: use an integer in [0, 2**32) or null for a random seed.")
    if cfg.get("trainer") is not None:
        check_trainer(cfg.trainer, training=bool(cfg.get("train", False)), this_machine=this_machine)
    if "train" in cfg and not cfg.get("train") and not cfg.get("test"):
        raise ConfigError("train=false and test=false: nothing to do. Set train=true, test=true or both.")
    if "train" in cfg and not cfg.get("train") and cfg.get("test") and not cfg.get("ckpt_path"):
        log.warning("train=false without ckpt_path: testing an untrained model")
    if cfg.get("model") is not None:
        check_learning_rates(cfg.model.get("optimizer"), "model.optimizer")
        check_monitor(cfg)


def check_trainer(trainer: DictConfig, training: bool, this_machine: bool = True) -> None:
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator={accelerator} is not allowed; use one of {', '.join(ACCELERATORS)}.")
    if this_machine:
        check_hardware(trainer, accelerator)
    max_epochs, min_epochs = trainer.get("max_epochs"), trainer.get("min_epochs")
    if training and isinstance(max_epochs, int) and max_epochs < 1 and max_epochs != -1:
        raise ConfigError(f"trainer.max_epochs={max_epochs} is not allowed: train for an integer >= 1 epochs "
                          "(-1: no limit, stop at trainer.max_steps), or use train=false ckpt_path=... to test a checkpoint.")
    if isinstance(min_epochs, int) and isinstance(max_epochs, int) and max_epochs >= 1 and min_epochs > max_epochs:
        raise ConfigError(f"trainer.min_epochs={min_epochs} is more than trainer.max_epochs={max_epochs}: "
                          "use a min_epochs <= max_epochs.")


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
            raise ConfigError(f"trainer.devices={show(devices)} is not allowed: a list names GPU indices, and this "
                              f"machine has {what} (indices 0 to {have - 1}).")


def check_learning_rates(node: Any, path: str) -> None:
    if not isinstance(node, DictConfig):
        return
    for key in ("lr", "max_lr"):
        value = value_of(node, key) if key in node else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 < value < math.inf:
            raise ConfigError(f"{path}.{key}={value} is not allowed: a learning rate is a finite number > 0 (e.g. 0.01).")


# Metrics each task module logs every epoch of a fit (what a checkpoint or early stop can
# monitor; train/loss_step is logged only on the steps the loggers write, so it is not one).
# tests/test_validation.py checks these against a real fit of each task module.
def logged_during_fit(model: DictConfig) -> set[str] | None:
    kind = task_kind(str(model.get("_target_")))
    if kind == "classification":
        return {"train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "val/acc_best"}
    if kind == "regression":
        loss = model.get("loss", "sse" if str(model.get("_target_")).endswith("ManualBackpropRegression") else "l1")
        same_as_loss = {"l1": "mae", "mse": "mse"}.get(str(loss))
        return {"train/loss", "train/lr", "val/loss"} | {
            f"{stage}/{name}" for stage in ("train", "val") for name in ("mse", "mae") if name != same_as_loss}
    return None  # a task module the project does not know: not checked


TASK_KINDS = {"lightning_modules.ClassificationModule": "classification",
              "lightning_modules.RegressionModule": "regression",
              "lightning_modules.ManualBackpropRegression": "regression"}


def task_kind(target: str) -> str | None:
    if target in TASK_KINDS or not target.startswith("lightning_modules."):
        return TASK_KINDS.get(target)
    from hydra.utils import get_class  # another task module of this project: import it to see

    from lightning_modules import ClassificationModule, RegressionModule

    try:
        task = get_class(target)
    except (ImportError, ValueError):
        return None  # a misspelt target: instantiating it says so
    return ("classification" if issubclass(task, ClassificationModule)
            else "regression" if issubclass(task, RegressionModule) else None)


def check_monitor(cfg: DictConfig) -> None:
    monitor = cfg.get("monitor") or {}
    mode = value_of(monitor, "mode") if "mode" in monitor else None
    if mode not in (None, "min", "max", UNRESOLVED):
        raise ConfigError(f"monitor.mode={mode} is not allowed; use min or max.")
    try:
        metric = monitor.metric if "metric" in monitor else None
    except OmegaConfBaseException as error:  # ${task_monitor:${model._target_},...} could not import it
        if "Error loading" not in str(error):
            return
        raise ConfigError(f"model._target_={cfg.model._target_} cannot be imported ({str(error).splitlines()[1]}); "
                          f"the task modules are {', '.join(sorted(TASK_KINDS))}.") from None
    logged = logged_during_fit(cfg.model)
    if isinstance(metric, str) and logged is not None and metric not in logged:
        raise ConfigError(f"monitor.metric={metric} is not allowed: {cfg.model._target_} does not log it every epoch of a fit. "
                          f"Monitor one of {', '.join(sorted(logged))}.")


def check_pairing(model, datamodule, model_name: str, data_name: str) -> None:
    """Fail early, and say why, when the model cannot learn from this data."""
    import torch

    pair = f"model={model_name} cannot train on data={data_name}"
    kind = datamodule.target_kind
    if kind not in model.accepted_targets:
        raise ConfigError(
            f"{pair}: {type(model).__name__} learns {'/'.join(sorted(model.accepted_targets))} targets, "
            f"but {type(datamodule).__name__} gives {kind} targets"
        )
    data_in = tuple(datamodule.input_shape)
    expected_in = tuple(getattr(model.net, "input_shape", ()) or ())
    if not expected_in:
        log.info("%s declares no input_shape: checking it by a forward pass only", type(model.net).__name__)
    elif expected_in != data_in:
        raise ConfigError(
            f"{pair}: {type(model.net).__name__} takes inputs of shape {list(expected_in)}, "
            f"but {type(datamodule).__name__} gives {list(data_in)}"
        )
    try:
        with torch.no_grad():
            out = model.net.eval()(datamodule.example_input())
        model.net.train()
    except Exception as exc:
        raise ConfigError(
            f"{pair}: {type(model.net).__name__} fails on a batch of shape {list(data_in)}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    width = out.shape[-1] if out.ndim > 1 else 1
    if kind == "regression":
        wanted, what = datamodule.target_dim, "target values"
    else:
        wanted, what = model.num_outputs, f"logits for {datamodule.num_classes} classes"
        if datamodule.num_classes != model.hparams.num_classes:
            raise ConfigError(
                f"{pair}: model.num_classes={model.hparams.num_classes} but the data has "
                f"{datamodule.num_classes} classes"
            )
    if width != wanted:
        raise ConfigError(f"{pair}: the net gives {width} outputs, the task needs {wanted} {what}")
