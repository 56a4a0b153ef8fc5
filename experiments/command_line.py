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
import sys
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments import checkpoints, overrides, ownership
from experiments.checks import ConfigError, show, unknown_key, validate_config, value_of
from experiments.faults import CANNOT_WRITE, DISK_FULL, describe_os_error, first_line, os_error
from experiments.run_folder import JOB_FILE, is_multirun
from experiments.schema import SCHEMAS

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SPLITS = ("train", "val", "test")


def config_groups(*groups: str) -> str:
    """``GROUP: option, option`` for the groups a script accepts (its --help; Hydra's own list
    would show every folder of conf/, most of which only experiments/run.py takes)."""
    return "\n".join(f"{g}: {', '.join(sorted(p.stem for p in (CONF_DIR / g).glob('*.yaml')))}" for g in groups)


if not OmegaConf.has_resolver("config_groups"):
    OmegaConf.register_new_resolver("config_groups", config_groups)


def check_command_line(config_name: str, args: list[str]) -> list[str]:
    """Exit with one paragraph (code 1) if ``python experiments/<config_name>.py ARGS`` has bad
    input; else return the command line to run (``+`` added where a key is an argument of the
    object's class that the config leaves out: ``trainer.max_time=...``, as Lightning takes it).

    The output folder is claimed here, before Hydra writes into it (experiments/ownership.py).
    A resume is checked as a whole (its recorded overrides and the new ones). A grid sweep is
    refused here only if every job would fail; otherwise each job checks its own values and a
    bad one is that job's failed row."""
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return args  # --help, --cfg, --info ...: Hydra's business
    try:
        claim_output_folder(config_name, args)
        for _ in range(len(args) + 1):
            try:
                check_jobs(config_name, args)
                return args
            except MissingArgument as missing:
                args = [f"+{a}" if "=" in a and a[0] not in "+~" and overrides.key(a) == missing.key else a for a in args]
    except ConfigError as error:
        fail(error)
    return args


class MissingArgument(Exception):
    def __init__(self, key: str):
        self.key = key


def check_jobs(config_name: str, args: list[str]) -> None:
    # A launcher other than Hydra's basic or joblib (or ours, parallel) runs the jobs on other machines.
    elsewhere = any(re.match(r"hydra/launcher=(?!basic$|joblib$|parallel$)", a) for a in args)
    jobs = job_overrides(args)
    errors = []
    hydra_log = logging.getLogger("hydra.utils")  # logs each failed import; the paragraph says it once
    hydra_log.disabled = True
    try:
        for i, job in enumerate(jobs or []):
            try:
                cfg = compose(config_name, job)
                if cfg is None:
                    return
                if i == 0:
                    check_log_dir(cfg, args)
                check_config(cfg, config_name, this_machine=not elsewhere)
            except ConfigError as error:
                errors.append(error)
            except OmegaConfBaseException:
                return  # a value that cannot be read (an interpolation, a missing env var): Hydra tells it
    finally:
        hydra_log.disabled = False
    if jobs and len(errors) == len(jobs):
        raise errors[0]


def claim_output_folder(config_name: str, args: list[str]) -> None:
    """``hydra.run.dir`` (``hydra.sweep.dir`` for -m) given as a folder: refused when it cannot be
    created, or when it is another run's or sweep's folder (resume= is the way into a run);
    else what it holds now is noted, so that a failure removes only what this process adds."""
    multirun = "-m" in args or "--multirun" in args
    setting = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = overrides.last_value(args, setting)
    if not isinstance(given, str) or "${" in given:
        return
    folder = Path(given).expanduser()
    resuming = config_name == "run" and overrides.last_value(args, "resume") not in (None, "null")
    if not folder.exists():
        why = ownership.cannot_create(folder)
        if why:
            raise ConfigError(f"{setting}={given}: the folder cannot be created ({why}). Give a folder you can write to.")
        ownership.made(folder)  # Hydra creates it for this process
        return
    if not folder.is_dir():
        raise ConfigError(f"{setting}={given} is a file, not a folder. Give a folder to write the run into.")
    if not resuming:
        what = ("another sweep's folder (it holds sweep.json)" if (folder / "sweep.json").is_file()
                else f"another run's folder (it holds {JOB_FILE})" if (folder / JOB_FILE).is_file()
                else "another run's folder (it holds .hydra/)" if (folder / ".hydra").is_dir() else None)
        if what:
            raise ConfigError(f"{setting}={given} is {what}: a new {'sweep' if multirun else 'run'} there would take it "
                              f"over. Continue a run with python experiments/run.py resume=FOLDER, or give a new folder.")
        busy = ownership.holder(folder)
        if busy:
            raise ConfigError(f"{setting}={given} is in use by {busy}: another run is writing there. Give a new folder.")
    ownership.existed(folder)


def check_log_dir(cfg: DictConfig, args: list[str]) -> None:
    """The folder that will hold the run's folder can be created (checked before Hydra makes it)."""
    if overrides.last_value(args, "hydra.run.dir") is not None or "paths" not in cfg:
        return
    try:
        parent = Path(cfg.paths.log_dir) / str(cfg.task_name)
    except OmegaConfBaseException:
        return
    why = ownership.cannot_create(parent / "runs" / ("x" * 120))  # room for a run folder's name
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


def check_config(cfg: DictConfig, config_name: str, this_machine: bool = True) -> None:
    validate_config(cfg, this_machine=this_machine)
    if config_name != "run" or not cfg.train:
        check_checkpoint(cfg, config_name)
    if config_name == "predict" and cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split} is not allowed: predict on one of {', '.join(SPLITS)}.")


def compose(config_name: str, job: list[str]) -> DictConfig | None:
    """The config Hydra will compose from these overrides; None if Hydra will refuse them with
    its own message."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        try:
            return hydra_compose(config_name, overrides=job)
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
            raise_unknown_key(without, key)
    return None


def raise_unknown_key(cfg: DictConfig, full: str) -> None:
    parent_path, _, key = full.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
    if not isinstance(parent, DictConfig):
        raise ConfigError(f"{full} is not a setting: {parent_path or 'the config'} has no keys.")
    known = [k for k in parent.keys() if not (k.startswith("_") and k.endswith("_"))]
    schema = SCHEMAS.get(str(parent.get("_target_", "")))
    if schema and key in schema.__dataclass_fields__:
        raise MissingArgument(full)  # an argument the config leaves at the class's default
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
    """``ckpt_path`` given and a checkpoint; for run.py train=false, holding weights of this model."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        if config_name == "run":
            return  # tests an untrained model, with a warning
        raise ConfigError(f"ckpt_path is required: python experiments/{config_name}.py ckpt_path=PATH, the checkpoint "
                          "a run printed as 'Best checkpoint:' (e.g. logs/train/runs/<run>/checkpoints/last.ckpt).")
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path}: no such file.")
    if config_name != "run":  # the model is rebuilt from the checkpoint's run config: is it one to build?
        checkpoints.run_config(checkpoints.read(path), path, list(cfg.get("trusted_packages") or []))
    else:
        saved = checkpoints.read(path).get(checkpoints.RUN_CONFIG) or {}
        theirs, ours = saved.get("model") or {}, OmegaConf.to_container(cfg.model, resolve=True)
        differ = [f"model.{k}: {show(pick(theirs, k))} there, {show(pick(ours, k))} here" for k in shape_keys(theirs, ours)]
        if theirs and differ:
            test = overrides.command("experiments/evaluate.py", overrides.assign("ckpt_path", str(path)))
            raise ConfigError(f"ckpt_path={path} holds another model's weights ({'; '.join(differ[:3])}), so they do "
                              f"not fit this run's model. Test it as it was trained: {test} "
                              "(evaluate.py rebuilds the model from the checkpoint).")


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
    """The one-paragraph message of an error caused by bad input or a known fault (a NaN loss, a
    full disk, a folder that cannot be written); None for anything else (a bug: its traceback)."""
    from hydra.errors import InstantiationException

    causes = [exc]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)
    for error in causes:  # by name: importing torch or datamodules just to compare is not worth it
        if isinstance(error, ConfigError) or type(error).__name__ in ("FashionMNISTUnavailable", "NonFiniteLoss"):
            return str(error)
        if type(error).__name__ == "CheckpointWriteError":
            return error.strerror
    full = os_error(exc, DISK_FULL)
    if full is not None:
        return f"the disk is full ({describe_os_error(full)})."
    cannot = os_error(exc, CANNOT_WRITE)
    if cannot is not None:
        return (f"{describe_os_error(cannot)}. Check that paths.log_dir (and paths.data_dir) name folders "
                "this user can write to, with names of at most 255 bytes.")
    cause = causes[-1]
    if isinstance(exc, InstantiationException) and isinstance(cause, (ValueError, TypeError, ImportError)):
        key = re.search(r"full_key: (\S+)", str(exc))
        target = re.search(r"target '([^']+)'", str(exc))
        return (f"{key.group(1) if key else 'config'}: {cause} "
                f"({target.group(1) if target else 'while building it'}).")
    if isinstance(cause, RuntimeError) and "Error(s) in loading state_dict" in str(cause):
        test = overrides.command("experiments/evaluate.py", "ckpt_path=PATH")
        return ("The checkpoint's weights do not fit this model (" + str(cause).splitlines()[0] + "). Test a "
                f"checkpoint as it was trained with {test}.")
    return None


@contextmanager
def one_paragraph_errors(discard: Path | None = None):
    """The entry point's one error handler. Bad input and known faults: one paragraph (after
    "Run failed:" and what the run folder says to do next, when a run had started), exit code 1,
    and what this process wrote in ``discard`` (a single run's output folder) removed. Anything
    else: what the run folder says, then the traceback, once. A signal's stop: what the run folder
    says, and its exit code. ``HYDRA_FULL_ERROR=1`` adds the traceback to every paragraph."""
    try:
        yield
    except SystemExit as stop:  # a signal's stop (lightning_modules/guards.py, RunInterrupted)
        _say(getattr(stop, "next_steps", None) or [])
        raise
    except Exception as exc:
        if discard is not None and not is_multirun():
            ownership.remove_own(discard)
        message = explain(exc)
        steps = getattr(exc, "next_steps", None)  # set when a run had started (experiments/run_folder.py)
        if steps is not None:
            _say([f"Run failed: {message or first_line(exc)}", *steps])
        elif message is not None:
            _say([message])
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(1) from None


def _say(lines: list[str]) -> None:
    if lines:
        print("\n".join(lines), file=sys.stderr, flush=True)
