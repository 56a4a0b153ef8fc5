"""Everything a script does before Hydra starts, in order: the project's folder made importable (a
package of your own at its top, ``mynets/``, imports as the project's do), a resume turned into
the run's own command line (experiments/runs/resume.py), bad input refused
(experiments/config/command_line.py), the checkpoint it is given read, and the output folder
claimed, so that a refused command line writes nothing and a failure later removes only what this
process made.

    sys.argv = before_hydra("run", sys.argv)   # at the top of each entry point's __main__
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from experiments.config import CONF_DIR, overrides
from experiments.config.checks import show
from experiments.config.command_line import cannot_create, check_command_line
from experiments.config.errors import ConfigError, fail
from experiments.runs import checkpoints, ownership
from experiments.runs.naming import SWEEP_FILE
from experiments.runs.record import JOB_FILE
from experiments.runs.resume import ResumeError, resume_argv
from lightning_modules.checkpoint_keys import RUN_CONFIG


def before_hydra(config_name: str, argv: list[str]) -> list[str]:
    """``sys.argv`` to give Hydra; a refusal is one paragraph and the exit (2 for a resume, else 1)."""
    importable_project()
    if int(os.environ.get("LOCAL_RANK") or 0) > 0:
        # A rank that Lightning's DDP started (popen) runs this script again with the run's
        # folder as hydra.run.dir: its rank 0 has checked and claimed everything already.
        return argv
    try:
        if config_name == "run":
            argv = resume_argv(argv)  # resume=...: the run's own overrides, its folder, held
        args = check_command_line(config_name, argv[1:], check_job=check_checkpoint)
        claim_output_folder(config_name, args)
    except ResumeError as refused:
        fail(ConfigError(refused.message), code=refused.code)
    except ConfigError as error:
        fail(error)
    return [argv[0], *args]


def importable_project() -> None:
    """The project's folder (``PROJECT_ROOT``, else this checkout) first on the module search path,
    of this process and of those it starts (a sweep's jobs), as ``python -m`` would have it."""
    folders = list(dict.fromkeys(str(Path(p).resolve()) for p in (os.environ.get("PROJECT_ROOT"), CONF_DIR.parent) if p))
    for folder in reversed(folders):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    known = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*folders, *(p for p in known if p)]))


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
        why = cannot_create(folder)
        if why:
            raise ConfigError(f"{setting}={given}: the folder cannot be created ({why}). Give a folder you can write to.")
        ownership.made(folder)  # Hydra creates it for this process
        return
    if not folder.is_dir():
        raise ConfigError(f"{setting}={given} is a file, not a folder. Give a folder to write the run into.")
    if not resuming:
        what = (f"another sweep's folder (it holds {SWEEP_FILE})" if (folder / SWEEP_FILE).is_file()
                else f"another run's folder (it holds {JOB_FILE})" if (folder / JOB_FILE).is_file()
                else "another run's folder (it holds .hydra/)" if (folder / ".hydra").is_dir() else None)
        if what:
            raise ConfigError(f"{setting}={given} is {what}: a new {'sweep' if multirun else 'run'} there would take it "
                              f"over. Continue a run with python experiments/run.py resume=FOLDER, or give a new folder.")
        busy = ownership.holder(folder)
        if busy:
            raise ConfigError(f"{setting}={given} is in use by {busy}: another run is writing there. Give a new folder.")
    ownership.existed(folder)


def check_checkpoint(cfg: DictConfig, config_name: str) -> None:
    """The checkpoint a script is given, read before anything is built: evaluate, predict and
    export rebuild the model from its run config (which must build only what a file may name);
    run.py train=false tests it with this run's model (its weights must fit)."""
    if config_name == "run" and cfg.get("train") or OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        return
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={path}: no such file.")
    if config_name != "run":  # the model is rebuilt from the checkpoint's run config: is it one to build?
        checkpoints.run_config(checkpoints.read(path), path, list(cfg.get("trusted_packages") or []))
    else:
        saved = checkpoints.read(path).get(RUN_CONFIG) or {}
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
