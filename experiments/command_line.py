"""Bad input on a script's command line: found before Hydra starts, told in one paragraph.

``check_command_line`` composes the config that Hydra is about to run (a fraction of a second,
nothing heavy imported) and checks it (experiments/checks.py), so a bad value exits with code 1
before any run folder exists, before the config tree is printed and before torch is imported.
``one_paragraph_errors`` does the same for bad input that only shows once objects are built.
``HYDRA_FULL_ERROR=1`` shows the traceback under the same message.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.checks import ConfigError, show, unknown_key, validate_config, value_of
from experiments.schema import SCHEMAS

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SPLITS = ("train", "val", "test")


def config_groups(*groups: str) -> str:
    """``GROUP: option, option`` for the groups a script accepts (its --help; Hydra's own list
    would show every folder of conf/, most of which only experiments/run.py takes)."""
    return "\n".join(f"{g}: {', '.join(sorted(p.stem for p in (CONF_DIR / g).glob('*.yaml')))}" for g in groups)


if not OmegaConf.has_resolver("config_groups"):
    OmegaConf.register_new_resolver("config_groups", config_groups)


def check_command_line(config_name: str, args: list[str]) -> None:
    """Exit with one paragraph (code 1) if ``python experiments/<config_name>.py ARGS`` has bad input.

    A resume is checked inside the run (its record notes the failed attempt). A grid sweep is
    refused here only if every job would fail; otherwise each job checks its own values and a
    bad one is that job's failed row."""
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return  # --help, --cfg, --info ...: Hydra's business
    # A launcher other than Hydra's basic or joblib (or ours, parallel) runs the jobs on other machines.
    elsewhere = any(re.match(r"hydra/launcher=(?!basic$|joblib$|parallel$)", a) for a in args)
    jobs = job_overrides(args)
    errors = []
    hydra_log = logging.getLogger("hydra.utils")  # logs each failed import; the paragraph says it once
    hydra_log.disabled = True
    try:
        for overrides in jobs or []:
            try:
                cfg = compose(config_name, overrides)
                if cfg is None or "resume" in cfg and cfg.resume is not None:
                    return
                check_config(cfg, config_name, this_machine=not elsewhere)
            except ConfigError as error:
                errors.append(error)
            except OmegaConfBaseException:
                return  # a value that cannot be read (an interpolation, a missing env var): Hydra tells it
    finally:
        hydra_log.disabled = False
    if jobs and len(errors) == len(jobs):
        fail(errors[0])


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


def check_config(cfg: DictConfig, config_name: str, this_machine: bool = True) -> None:
    validate_config(cfg, this_machine=this_machine)
    if config_name != "run" or not cfg.train:
        check_checkpoint(cfg, config_name)
    if config_name == "predict" and cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split} is not allowed: predict on one of {', '.join(SPLITS)}.")


def compose(config_name: str, overrides: list[str]) -> DictConfig | None:
    """The config Hydra will compose from these overrides; None if Hydra will refuse them with
    its own message."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        try:
            return hydra_compose(config_name, overrides=overrides)
        except HydraException as error:
            present = re.search(r"An item is already at '([^']+)'", str(error))
            if present:  # `+key=value` for a key the config has (the trainer's limit_*_batches...)
                given = next((o for o in overrides if o.lstrip("+").split("=", 1)[0] == present.group(1)), present.group(1))
                raise ConfigError(f"{given}: {present.group(1)} is already a setting, so it takes no +: "
                                  f"{given.lstrip('+')}") from None
            missing = re.search(r"Could not override '([^']+)'", str(error))
            if missing:  # a key the config lacks: name the close match, not Hydra's `+` advice
                key = missing.group(1)
                others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
                try:
                    without = hydra_compose(config_name, overrides=others)
                except HydraException:
                    return None
                raise_unknown_key(without, key)
            return None


def raise_unknown_key(cfg: DictConfig, full: str) -> None:
    parent_path, _, key = full.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    if not isinstance(parent, DictConfig):
        raise ConfigError(f"{full} is not a setting: {parent_path or 'the config'} has no keys.")
    known = [k for k in parent.keys() if not (k.startswith("_") and k.endswith("_"))]
    schema = SCHEMAS.get(str(parent.get("_target_", "")))
    if schema:
        known += [f for f in schema.__dataclass_fields__ if f not in known]
    why = f"{parent._target_} has no argument {key!r}" if schema else f"{parent_path or 'the config'} has no key {key!r}"
    raise ConfigError(unknown_key(full, known, why, elsewhere=list(key_paths(cfg))))


def key_paths(node: DictConfig, path: str = ""):
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        yield full
        child = value_of(node, key)
        if isinstance(child, DictConfig):
            yield from key_paths(child, full)


def check_checkpoint(cfg: DictConfig, config_name: str) -> None:
    """``ckpt_path`` given and a file; for run.py train=false, holding weights of this model."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        if config_name == "run":
            return  # tests an untrained model, with a warning
        raise ConfigError(f"ckpt_path is required: python experiments/{config_name}.py ckpt_path=PATH, the checkpoint "
                          "a run printed as 'Best checkpoint:' (e.g. logs/train/runs/<run>/checkpoints/last.ckpt).")
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path}: no such file.")
    if config_name == "run":
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("run_config") or {}
        theirs, ours = saved.get("model") or {}, OmegaConf.to_container(cfg.model, resolve=True)
        differ = [f"model.{k}: {show(pick(theirs, k))} there, {show(pick(ours, k))} here" for k in shape_keys(theirs, ours)]
        if theirs and differ:
            raise ConfigError(f"ckpt_path={path} holds another model's weights ({'; '.join(differ[:3])}), so they do "
                              f"not fit this run's model. Test it as it was trained: python experiments/evaluate.py "
                              f"ckpt_path={path} (evaluate.py rebuilds the model from the checkpoint).")


def pick(model: dict, key: str):
    return (model.get("net") or {}).get(key[4:]) if key.startswith("net.") else model.get(key)


def shape_keys(theirs: dict, ours: dict) -> list[str]:
    """The keys of two model configs that decide the weights' names and shapes, where they differ."""
    net_a, net_b = theirs.get("net") or {}, ours.get("net") or {}
    classes = [k for k, a, b in (("_target_", theirs, ours), ("net._target_", net_a, net_b))
               if a.get("_target_") != b.get("_target_")]
    if classes:  # another class altogether: its arguments say nothing more
        return classes
    keys = []
    for k in dict.fromkeys([*net_a, *net_b]):
        a, b = net_a.get(k), net_b.get(k)
        if a != b and (k == "_target_" or any(isinstance(v, (int, list)) and not isinstance(v, bool) for v in (a, b))):
            keys.append(f"net.{k}")
    return keys


def fail(error: Exception) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(str(error), file=sys.stderr, flush=True)
    sys.exit(1)


def explain(exc: BaseException) -> str | None:
    """The one-paragraph message of an error caused by bad input; None for anything else (a bug)."""
    from hydra.errors import InstantiationException

    chain = [exc]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    for error in chain:  # by name: importing datamodules (torchvision) just to compare is not worth it
        if isinstance(error, ConfigError) or type(error).__name__ == "FashionMNISTUnavailable":
            return str(error)
    cause = chain[-1]
    if isinstance(exc, InstantiationException) and isinstance(cause, (ValueError, TypeError, ImportError)):
        key = re.search(r"full_key: (\S+)", str(exc))
        target = re.search(r"target '([^']+)'", str(exc))
        return (f"{key.group(1) if key else 'config'}: {cause} "
                f"({target.group(1) if target else 'while building it'}).")
    if isinstance(cause, FileNotFoundError) and "ckpt_path=" in str(cause):
        return str(cause)
    if isinstance(cause, RuntimeError) and "Error(s) in loading state_dict" in str(cause):
        return ("The checkpoint's weights do not fit this model (" + str(cause).splitlines()[0] + "). Test a "
                "checkpoint as it was trained with python experiments/evaluate.py ckpt_path=PATH.")
    return None


@contextmanager
def one_paragraph_errors(discard: Path | None = None):
    """Bad input found while building or testing: one paragraph, exit code 1, and the folder
    ``discard`` (a single run's output folder, holding nothing yet) removed."""
    try:
        yield
    except Exception as exc:
        if discard is not None and not is_multirun():
            shutil.rmtree(discard, ignore_errors=True)
        message = explain(exc)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def is_multirun() -> bool:
    from experiments.run_folder import is_multirun as multirun

    return multirun()
