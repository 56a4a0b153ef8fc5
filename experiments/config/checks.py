"""The composed config checked before anything is built, so that bad input fails in a second with
one paragraph naming the key, the bad value and what is allowed: every object node against the
arguments of its class (experiments/config/signatures.py: the project's schemas, or the signature
of a class of yours), the values no type can express (lr > 0, epochs >= 1, devices this machine
has: experiments/config/hardware.py, a monitored metric the task logs:
lightning_modules/task_table.py), and whether the model can learn from the data
(experiments/config/pairing.py). Run before Hydra starts (experiments/config/command_line.py) and
again in each job, where a sweep's bad value is a failed row."""

from __future__ import annotations

import difflib
import logging
import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.config.errors import ConfigError
from experiments.config.hardware import check_hardware
from experiments.config.hydra_runtime import hydra_choices
from experiments.config.pairing import check_declared_pairing
from experiments.config.schema import conforms, describe
from experiments.config.signatures import arguments_of
from lightning_modules.task_table import TASKS, task_of

log = logging.getLogger(__name__)

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
UNRESOLVED = object()  # a value that cannot be resolved before Hydra runs (${hydra:...}, ???)


# ---------------------------------------------------------------- the composed config

def value_of(node: DictConfig | ListConfig, key: Any) -> Any:
    try:
        return node[key]
    except OmegaConfBaseException:
        return UNRESOLVED


def check_types(node: DictConfig, path: str = "") -> None:
    """Every key of every object node is an argument of its ``_target_`` and has its type; an
    argument without a default is given (unless the node is a partial, completed by the code)."""
    target = str(node.get("_target_", "")) if "_target_" in node else ""
    arguments = arguments_of(target) if target else None
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        if arguments and not (key.startswith("_") and key.endswith("_")):
            if key not in arguments.types:
                if not arguments.more:
                    raise ConfigError(unknown_key(full, list(arguments.types), f"{target} has no argument {key!r}"))
            else:
                value = value_of(node, key)
                if value is not UNRESOLVED and not conforms(value, arguments.types[key]):
                    raise ConfigError(f"{full}={show(value)} is not allowed: {full} takes "
                                      f"{describe(arguments.types[key])} (the argument {key} of {target}).")
        child = value_of(node, key)
        if isinstance(child, DictConfig):
            check_types(child, full)
    if arguments and not node.get("_partial_", False):
        missing = [name for name in arguments.required if name not in node]
        if missing:
            where = f"{path}.{missing[0]}" if path else missing[0]
            raise ConfigError(f"{where} is required: {target} has no default for its argument {missing[0]}; "
                              f"add {where}=VALUE to the command line (or to the config).")


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


def validate_config(cfg: DictConfig, this_machine: bool = True, choices: dict[str, str] | None = None) -> None:
    """The whole composed config of experiments/run.py (or a run config that evaluate.py tests).
    ``this_machine=False``: the run goes to other machines (a SLURM job): their GPUs and cores
    are not this one's to count. ``choices``: the option of each config group (model=cnn ...),
    named in a pairing's paragraph (by default the running Hydra app's)."""
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
    check_declared_pairing(cfg, hydra_choices() if choices is None else choices)


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


def check_learning_rates(node: Any, path: str) -> None:
    if not isinstance(node, DictConfig):
        return
    for key in ("lr", "max_lr"):
        value = value_of(node, key) if key in node else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 < value < math.inf:
            raise ConfigError(f"{path}.{key}={value} is not allowed: a learning rate is a finite number > 0 (e.g. 0.01).")


def logged_during_fit(model: DictConfig) -> set[str] | None:
    """What a fit of this task module logs every epoch (None for a task module the project does not know)."""
    task = task_of(str(model.get("_target_")))
    return task.logged_during_fit(model) if task else None


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
                          f"the task modules are {', '.join(sorted(TASKS))}.") from None
    logged = logged_during_fit(cfg.model)
    if isinstance(metric, str) and logged is not None and metric not in logged:
        raise ConfigError(f"monitor.metric={metric} is not allowed: {cfg.model._target_} does not log it every epoch of a fit. "
                          f"Monitor one of {', '.join(sorted(logged))}.")
