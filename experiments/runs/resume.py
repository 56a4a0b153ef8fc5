"""Resume: ``resume=FOLDER|latest`` turned, before Hydra starts, into the run's own overrides
plus the new ones, run in the run's own folder, which this process then holds.

A resume that cannot go ahead (no such run, a change of what the checkpoint means, a finished run,
a folder another process holds, a recorded file that was edited) is refused with one paragraph and
exit code 2, and nothing is written. The run's recorded overrides are data, not code: a Hydra
setting there is refused, and the config they compose builds only what a file may name
(experiments/config/trusted.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config import CONF_DIR, overrides
from experiments.config.errors import ConfigError, first_line
from experiments.runs import checkpoints, ownership
from experiments.runs.record import JobRecord, UnreadableRecord

LAST = checkpoints.LAST
# Overrides that decide what a checkpoint's weights mean; a resume may not change them.
# An Optuna trial's run stays that trial (experiments/runs/trial.py).
FIXED_AT_RESUME = ("model", "data", "experiment", "seed", "task_name", "hparams_search", "trial")
# A resume's Hydra rewrites the run's .hydra/ files before the run starts; if it then fails
# before training, these are put back (put_back_record), so the record and the next resume
# still replay what ran. Filled by resume_argv, in the same process.
_record_before_resume: dict[Path, bytes] = {}


class ResumeError(SystemExit):
    """A resume that cannot go ahead: printed as one paragraph, exit code 2, nothing written."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


# Groups whose option names a run: resume=latest with one of them on the command line picks
# the newest run of that option (``experiment=xor resume=latest``: the newest XOR experiment).
NAMING_GROUPS = ("experiment", "model", "data")


def _compose(args: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose("run", overrides=args, return_hydra_config=True)


def _runs_root(args: list[str]) -> tuple[Path, dict[str, str]]:
    """``<paths.log_dir>/<task_name>/runs`` as these overrides compose it, and the options of
    NAMING_GROUPS that the overrides choose."""
    plain = [a for a in args if not a.startswith(("hydra.", "hydra/", "-"))]
    cfg = _compose(plain)
    chosen = {overrides.key(a) for a in plain}
    wanted = {g: str(cfg.hydra.runtime.choices.get(g)) for g in NAMING_GROUPS if g in chosen}
    return Path(cfg.paths.log_dir) / str(cfg.task_name) / "runs", wanted


def run_choices(run_dir: Path) -> dict[str, str]:
    """The option each config group had in a run (from its ``.hydra/hydra.yaml``)."""
    import yaml

    try:
        choices = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]["choices"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return {k: str(v) for k, v in choices.items()}


def latest_run(args: list[str], asked: str = "resume=latest") -> Path:
    """The newest run folder of this task_name that has a last.ckpt (of the experiment, model
    and data that ``args`` name, if they name any)."""
    root, wanted = _runs_root(args)
    runs = [p.parent.parent for p in root.glob(f"*/checkpoints/{LAST}")]
    runs = [r for r in runs if all(run_choices(r).get(g) == v for g, v in wanted.items())]
    if not runs:
        of = f" and is a run of {' '.join(f'{g}={v}' for g, v in wanted.items())}" if wanted else ""
        raise ResumeError(f"{asked}: no run under {root} has checkpoints/{LAST}{of}. Check the overrides, "
                          "task_name and paths.log_dir, or name a run folder.")
    return max(runs, key=lambda p: (p.name[:19], (p / ".hydra").stat().st_mtime if (p / ".hydra").exists() else 0))


def resume_argv(argv: list[str]) -> list[str]:
    """``sys.argv`` for ``resume=FOLDER|latest`` (and ``ckpt_path=last``, and ``ckpt_path=`` a
    checkpoint inside a run folder with ``train=true``): the run's recorded overrides, then
    the new ones, in the run's own folder, which this process then holds (experiments/runs/ownership.py).
    Other command lines are returned unchanged."""
    args = argv[1:]
    resume = overrides.last_value(args, "resume")
    ckpt = overrides.last_value(args, "ckpt_path")
    training = str(overrides.last_value(args, "train") or "true").lower() != "false"
    if ckpt == "last" and not training:  # test the newest run's last checkpoint
        path = latest_run(args, "ckpt_path=last") / "checkpoints" / LAST
        return [argv[0], *[a for a in args if overrides.key(a) != "ckpt_path"], overrides.assign("ckpt_path", str(path))]
    if resume is None and training and ckpt not in (None, "null"):
        if ckpt == "last":
            resume = "latest"
        elif (Path(ckpt).resolve().parent.parent / ".hydra" / "overrides.yaml").is_file():
            resume = str(Path(ckpt).resolve().parent.parent)  # a checkpoint of a run: continue that run
    if resume in (None, "null"):
        return argv
    if "-m" in args or "--multirun" in args:
        raise ResumeError("resume= continues one run; it cannot be combined with -m. "
                          "Resume each job of a sweep by its folder: resume=<sweep folder>/<job>.")
    new = [a for a in args if overrides.key(a) not in ("resume", "hydra.run.dir")
           and not (ckpt == "last" and overrides.key(a) == "ckpt_path")]
    folder = latest_run(new) if resume == "latest" else Path(resume).expanduser().resolve()
    recorded = folder / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        raise ResumeError(f"resume={resume}: {folder} is not a run folder (it has no .hydra/overrides.yaml). "
                          "Use resume=latest or the folder a run printed as 'Output:'.")
    if not ((folder / "checkpoints" / LAST).is_file() or overrides.last_value(new, "ckpt_path") not in (None, "null")):
        raise ResumeError(f"resume={resume}: {folder} has no checkpoints/{LAST}: the run stopped before "
                          "its first checkpoint, so there is nothing to continue. Start it anew.")
    busy = ownership.holder(folder)  # before reading its files, which the holder may be rewriting
    if busy:
        raise _in_use(resume, folder, busy)
    previous = _recorded_overrides(resume, recorded)
    changed = _changes(new, previous, folder)
    if changed:
        raise ResumeError(
            f"resume={resume}: {' '.join(changed)} would change what the checkpoint in {folder} was trained "
            f"as ({', '.join(FIXED_AT_RESUME)} are fixed for a run). Resume with other settings only "
            "(e.g. trainer.max_epochs=N), or start a new run.")
    _refuse_finished_or_fewer_epochs(resume, folder, overrides.last_value(new, "trainer.max_epochs"))
    merged: dict[str, str] = {}
    for o in [*previous, *new]:  # the last value of a key wins, once
        merged.pop(overrides.key(o), None)
        merged[overrides.key(o)] = o
    argv = [argv[0], *merged.values(), overrides.assign("resume", str(folder)), overrides.assign("hydra.run.dir", str(folder))]
    try:
        _check_replayed_targets(recorded, argv[1:])
    except ConfigError as refused:
        raise ResumeError(f"resume={resume}: {refused}") from None
    try:
        ownership.lock(folder)  # held until this process ends: no other run or resume writes there
    except ownership.FolderInUse as taken:  # by a process that started since the check above
        raise _in_use(resume, folder, taken.holder) from None
    _record_before_resume.clear()
    for path in [*(folder / ".hydra").glob("*.yaml"), folder / "config_tree.log"]:
        if path.is_file():
            _record_before_resume[path] = path.read_bytes()
    return argv


def _in_use(resume: str, folder: Path, holder: str) -> ResumeError:
    return ResumeError(f"resume={resume}: {folder} is in use by {holder}: a run or resume is writing there now. "
                       "Wait for it to end (or stop it), then resume.")


def put_back_record() -> None:
    """Put back the run's .hydra/ record and config tree as they were before this resume
    (experiments/runs/folder.py calls it when the attempt failed before training)."""
    for path, content in _record_before_resume.items():
        path.write_bytes(content)



def _recorded_overrides(resume: str, recorded: Path) -> list[str]:
    """The run's own overrides from its .hydra/overrides.yaml, which are data: a Hydra setting
    there, or a trust that was given on the command line, is not replayed."""
    try:
        saved = OmegaConf.to_container(OmegaConf.load(recorded))
    except Exception as error:  # noqa: BLE001 - an edited or damaged file
        raise ResumeError(f"resume={resume}: {recorded} cannot be read ({first_line(error)}); "
                          "it must be the list of overrides Hydra wrote for that run.") from None
    if not isinstance(saved, list) or not all(isinstance(o, str) for o in saved):
        raise ResumeError(f"resume={resume}: {recorded} is not a list of overrides; it must be the file Hydra wrote.")
    hydra_settings = [o for o in saved if overrides.key(o).startswith(("hydra.", "hydra/"))]
    if hydra_settings:
        raise ResumeError(f"resume={resume}: {recorded} sets {hydra_settings[0]}, a Hydra setting, which a run never "
                          "records there; the file was edited, so it is not replayed. Start a new run.")
    return [o for o in saved if overrides.key(o) not in ("resume", "ckpt_path", "train", "trusted_packages")]


def _changes(new: list[str], previous: list[str], folder: Path) -> list[str]:
    """The new overrides that would change what the run is (FIXED_AT_RESUME): a group given the
    option it already had, or a key its value, is no change."""
    choices = run_choices(folder)
    try:
        saved = OmegaConf.load(folder / ".hydra" / "config.yaml")
    except Exception:  # noqa: BLE001 - no config to compare with: only the recorded overrides count
        saved = OmegaConf.create()
    changed = []
    for o in new:
        name = overrides.key(o)
        if name.split(".")[0].split("/")[0] not in FIXED_AT_RESUME or o in previous:
            continue
        given = overrides.value(o)
        had = choices.get(name) if name in choices else OmegaConf.select(saved, name, default=None)
        if str(given) != str(had):
            changed.append(o)
    return changed


def _refuse_finished_or_fewer_epochs(resume: str, folder: Path, max_epochs: Any) -> None:
    """A finished run is refused (its record and checkpoints stay as they are) unless it is
    given more epochs; Lightning counts epochs from the run's start and refuses a checkpoint
    past max_epochs with a traceback, so fewer epochs are refused here, before anything is written."""
    last = folder / "checkpoints" / LAST
    if not last.is_file():
        return
    try:
        checkpoint = checkpoints.read(last)
    except ConfigError as error:
        raise ResumeError(f"resume={resume}: {error}") from None
    done = checkpoints.epochs_done(checkpoint)
    test = overrides.command("experiments/evaluate.py", overrides.assign("ckpt_path", str(last)))
    if max_epochs is not None and not str(max_epochs).lstrip("-").isdigit():
        return  # not a number: refused as bad input, with the other values (experiments/config/command_line.py)
    if max_epochs is not None and 0 <= int(max_epochs) < done:
        raise ResumeError(
            f"resume={resume}: trainer.max_epochs={max_epochs} is fewer than the {done} epochs {folder} has "
            f"trained (epochs count from the run's start). Give trainer.max_epochs > {done} to train on, or "
            f"test it as it is: {test}")
    if _finished(folder) and (max_epochs is None or 0 <= int(max_epochs) <= done):
        raise ResumeError(
            f"resume={resume}: the run in {folder} finished ({done} epochs); resuming would train no further. "
            f"Give trainer.max_epochs > {done} to train on, or test it: {test}")
    _refuse_past_the_schedule(resume, folder, checkpoint, max_epochs, done, test)


def _refuse_past_the_schedule(resume: str, folder: Path, checkpoint: dict[str, Any], max_epochs: Any, done: int,
                              test: str) -> None:
    """A schedule sized for the run's epochs (OneCycle) has no learning rate past them: the
    scheduler would raise a traceback at the first step after, once the planned epochs are
    trained. More epochs than the run was started with are refused here, before anything runs."""
    if max_epochs is None:
        return
    schedule = checkpoints.fixed_schedule(checkpoint)
    if schedule is None:
        return
    name, steps, planned = schedule
    if 0 <= int(max_epochs) <= planned:
        return
    finish = (f"resume with trainer.max_epochs <= {planned} to finish it, " if done < planned else "")
    raise ResumeError(
        f"resume={resume}: trainer.max_epochs={max_epochs} would train past the end of the run's learning-rate "
        f"schedule: its {name} was sized for the {planned} epochs the run in {folder} was started with ({steps} "
        f"steps) and has no rate for a step after them. Instead, {finish}test it as it is ({test}), or start a "
        f"new run with trainer.max_epochs={max_epochs}.")


def _check_replayed_targets(recorded: Path, args: list[str]) -> None:
    """The config the replayed overrides compose to builds only what a file may name
    (experiments/config/trusted.py); the trust comes from this command line and conf/, never the file."""
    from experiments.config.trusted import check_targets

    plain = [a for a in args if not overrides.key(a).startswith(("hydra.", "hydra/")) and not a.startswith("-")]
    try:
        cfg = _compose([a for a in plain if overrides.key(a) != "resume"])
    except Exception:  # noqa: BLE001 - Hydra refuses the overrides itself, before building anything
        return
    trusted = list(cfg.get("trusted_packages") or [])
    content = OmegaConf.to_container(cfg, resolve=False)
    content.pop("hydra", None)
    check_targets(content, f"the config that its recorded overrides ({recorded}) compose", trusted)


def _finished(folder: Path) -> bool:
    try:
        record = JobRecord.read(folder)
    except UnreadableRecord:
        return False
    return record is not None and record.status == "ok"


