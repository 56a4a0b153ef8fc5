"""Bad input on a script's command line, found before Hydra starts and told in one paragraph.

``check_command_line`` composes the config that Hydra is about to run (a fraction of a second,
nothing heavy imported) and checks it (experiments/config/checks.py), so a bad value exits with
code 1 before any run folder exists, before the config tree is printed and before torch is
imported. Bad input that only shows once objects are built is told the same way by
experiments/config/errors.py.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from experiments.config import CONF_DIR, overrides
from experiments.config.checks import unknown_key, validate_config, value_of
from experiments.config.errors import ConfigError, fail
from experiments.config.signatures import arguments_of

SPLITS = ("train", "val", "test")
# Launchers whose jobs run on this machine (others: on machines whose GPUs and cores are not ours to count).
THIS_MACHINE = ("basic", "joblib", "parallel")
JobCheck = Callable[[DictConfig, str], None]


def check_command_line(config_name: str, args: list[str], check_job: JobCheck | None = None) -> list[str]:
    """Exit with one paragraph (code 1) if ``python experiments/<config_name>.py ARGS`` has bad
    input; else return the command line to run (``+`` added where a key is an argument of the
    object's class that the config leaves out: ``trainer.max_time=...``, as Lightning takes it).

    ``check_job(cfg, config_name)`` adds the caller's checks of each job (experiments/runs/start.py:
    the checkpoint a script is given). A grid sweep is
    refused here only if every job would fail; otherwise each job checks its own values and a
    bad one is that job's failed row."""
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return args  # --help, --cfg, --info ...: Hydra's business
    try:
        for _ in range(len(args) + 1):
            try:
                check_jobs(config_name, args, check_job)
                return args
            except MissingArgument as missing:
                args = [f"+{a}" if "=" in a and a[0] not in "+~" and overrides.key(a) == missing.key else a for a in args]
    except ConfigError as error:
        fail(error)
    return args


class MissingArgument(Exception):
    def __init__(self, key: str):
        self.key = key


def check_jobs(config_name: str, args: list[str], check_job: JobCheck | None = None) -> None:
    launcher = overrides.last_value([a for a in args if a.startswith("hydra/launcher=")], "hydra/launcher")
    elsewhere = launcher is not None and launcher not in THIS_MACHINE
    jobs = job_overrides(args)
    errors = []
    hydra_log = logging.getLogger("hydra.utils")  # logs each failed import; the paragraph says it once
    hydra_log.disabled = True
    try:
        for i, job in enumerate(jobs or []):
            try:
                composed = compose(config_name, job)
                if composed is None:
                    return
                cfg, choices = composed
                if i == 0:
                    check_log_dir(cfg, args)
                check_config(cfg, config_name, this_machine=not elsewhere, choices=choices)
                if check_job is not None:
                    check_job(cfg, config_name)
            except ConfigError as error:
                errors.append(error)
            except OmegaConfBaseException:
                return  # a value that cannot be read (an interpolation, a missing env var): Hydra tells it
    finally:
        hydra_log.disabled = False
    if jobs and len(errors) == len(jobs):
        raise errors[0]


def check_log_dir(cfg: DictConfig, args: list[str]) -> None:
    """The folder that will hold the run's folder can be created (checked before Hydra makes it)."""
    if overrides.last_value(args, "hydra.run.dir") is not None or "paths" not in cfg:
        return
    try:
        parent = Path(cfg.paths.log_dir) / str(cfg.task_name)
    except OmegaConfBaseException:
        return
    why = cannot_create(parent / "runs" / ("x" * 120))  # room for a run folder's name
    if why:
        raise ConfigError(f"paths.log_dir={cfg.paths.log_dir}: no run folder can be created under {parent} ({why}). "
                          "Give a folder you can write to: paths.log_dir=FOLDER.")


def job_overrides(args: list[str]) -> list[list[str]] | None:
    """Each job's overrides (one job unless -m), hydra.* left out; None where Hydra will refuse
    the command line itself, or the sweeper draws the values (Optuna's interval())."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    multirun = "-m" in args or "--multirun" in args
    try:
        parsed = [o for o in OverridesParser.create().parse_overrides([a for a in args if a not in ("-m", "--multirun")])
                  if not o.is_hydra_override()]
        if not multirun:
            return [[o.input_line for o in parsed]]
        choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
                   else [o.input_line] for o in parsed]
    except HydraException:
        return None
    jobs = [list(job) for job in itertools.islice(itertools.product(*choices), MAX_JOBS_CHECKED + 1)]
    return jobs if len(jobs) <= MAX_JOBS_CHECKED else None


MAX_JOBS_CHECKED = 64  # a grid larger than this: each job checks itself


def check_config(cfg: DictConfig, config_name: str, this_machine: bool = True,
                 choices: dict[str, str] | None = None) -> None:
    validate_config(cfg, this_machine=this_machine, choices=choices or {})
    if config_name != "run" and (OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path")):
        raise ConfigError(f"ckpt_path is required: python experiments/{config_name}.py ckpt_path=PATH, the checkpoint "
                          "a run printed as 'Best checkpoint:' (e.g. logs/train/runs/<run>/checkpoints/last.ckpt).")
    if config_name == "predict" and cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split} is not allowed: predict on one of {', '.join(SPLITS)}.")


def compose(config_name: str, job: list[str]) -> tuple[DictConfig, dict[str, str]] | None:
    """The config Hydra will compose from these overrides and the option chosen in each group
    (model=cnn ...); None if Hydra will refuse them with its own message."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        try:
            cfg = hydra_compose(config_name, overrides=job, return_hydra_config=True)
            choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if v is not None}
            with open_dict(cfg):
                del cfg["hydra"]
            return cfg, choices
        except HydraException as error:
            refused = str(error)
    present = re.search(r"An item is already at '([^']+)'", refused)
    if present:  # `+key=value` for a key the config has (the trainer's limit_*_batches...)
        given = next((o for o in job if overrides.key(o) == present.group(1)), present.group(1))
        raise ConfigError(f"{given}: {present.group(1)} is already a setting, so it takes no +: {given.lstrip('+')}")
    missing = re.search(r"Could not override '([^']+)'", refused)
    if missing:  # a key the config lacks: name the close match, not Hydra's `+` advice
        key = missing.group(1)
        without = compose(config_name, [o for o in job if overrides.key(o) != key])  # the other keys first
        if without is not None:
            raise_unknown_key(without[0], key)
    return None


def raise_unknown_key(cfg: DictConfig, full: str) -> None:
    parent_path, _, key = full.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    if not isinstance(parent, DictConfig):
        raise ConfigError(f"{full} is not a setting: {parent_path or 'the config'} has no keys.")
    known = [k for k in parent.keys() if not (k.startswith("_") and k.endswith("_"))]
    arguments = arguments_of(str(parent.get("_target_", ""))) if "_target_" in parent else None
    if arguments and (key in arguments.types or arguments.more):
        raise MissingArgument(full)  # an argument the config leaves at the class's default
    if arguments:
        known += [f for f in arguments.types if f not in known]
    why = f"{parent._target_} has no argument {key!r}" if arguments else f"{parent_path or 'the config'} has no key {key!r}"
    raise ConfigError(unknown_key(full, known, why, elsewhere=list(key_paths(cfg))))


def key_paths(node: DictConfig, path: str = ""):
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        yield full
        child = value_of(node, key)
        if isinstance(child, DictConfig):
            yield from key_paths(child, full)


def cannot_create(folder: str | Path) -> str | None:
    """Why ``folder`` cannot be created by this user (None if it can), without creating it."""
    path = Path(os.path.abspath(Path(folder).expanduser()))
    if any(len(os.fsencode(part)) > 255 for part in path.parts):
        return "a folder name there is longer than 255 bytes, the most a file system takes"
    if len(os.fsencode(str(path))) >= 4096:
        return "the path is longer than 4096 bytes"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written by this user (read-only or no permission)"
    return None
