"""One run's folder, and the one place that owns it: where it is (a new, unique folder, or an
earlier run's on resume), its record ``job.json``, the signals, and what a finished, failed or
interrupted run leaves there and prints.

- ``unique_dir`` (the ``${unique_dir:PARENT}`` resolver of conf/run.yaml) creates each run's and
  each multirun's folder with ``mkdir``, which succeeds for exactly one process, so runs started
  in the same second, on this machine or another sharing the file system, never share one.
- ``resume_argv`` turns ``resume=FOLDER|latest`` into the run's own overrides plus the new ones,
  run in its own folder; it runs before Hydra, so that a refused override changes nothing there.
- ``RunFolder`` wraps one run (``with RunFolder(cfg) as run: ...``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments import checkpoints, overrides, ownership
from experiments.checks import ConfigError
from experiments.faults import DISK_FULL, describe_os_error, first_line, os_error

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
LAST = "last.ckpt"
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# A resume's Hydra rewrites the run's .hydra/ files before the run starts; if it then fails
# before training (a bad value), these are put back, so the record and the next resume still
# replay what ran. Filled by resume_argv, in the same process.
_RECORD_BEFORE_RESUME: dict[Path, bytes] = {}
# Overrides that decide what a checkpoint's weights mean; a resume may not change them.
FIXED_AT_RESUME = ("model", "data", "experiment", "seed", "task_name", "hparams_search")


class ResumeError(SystemExit):
    """A resume that cannot go ahead: printed as one paragraph, exit code 2, nothing written."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


def unique_dir(parent: str, name: str = "") -> str:
    """``PARENT/<YYYY-MM-DD_HH-MM-SS>_<NAME>_<6 hex digits>`` (no ``_<NAME>`` part for an empty
    name), created here. The timestamp comes first, so folders sort by start time."""
    parent_dir = Path(parent)
    try:
        parent_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # checked before Hydra starts (experiments/command_line.py); a race since
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


# ---------------------------------------------------------------- resume, before Hydra starts

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
    the new ones, in the run's own folder, which this process then holds (experiments/ownership.py).
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
    except ownership.FolderInUse as busy:
        raise ResumeError(f"resume={resume}: {folder} is in use by {busy.holder}: a run or resume is writing there "
                          "now. Wait for it to end (or stop it), then resume.") from None
    _RECORD_BEFORE_RESUME.clear()
    for path in [*(folder / ".hydra").glob("*.yaml"), folder / "config_tree.log"]:
        if path.is_file():
            _RECORD_BEFORE_RESUME[path] = path.read_bytes()
    return argv


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
        done = checkpoints.epochs_done(last)
    except ConfigError as error:
        raise ResumeError(f"resume={resume}: {error}") from None
    test = overrides.command("experiments/evaluate.py", overrides.assign("ckpt_path", str(last)))
    if max_epochs is not None and not str(max_epochs).lstrip("-").isdigit():
        return  # not a number: refused as bad input, with the other values (experiments/command_line.py)
    if max_epochs is not None and 0 <= int(max_epochs) < done:
        raise ResumeError(
            f"resume={resume}: trainer.max_epochs={max_epochs} is fewer than the {done} epochs {folder} has "
            f"trained (epochs count from the run's start). Give trainer.max_epochs > {done} to train on, or "
            f"test it as it is: {test}")
    if _read_record(folder).get("status") == "ok" and (max_epochs is None or 0 <= int(max_epochs) <= done):
        raise ResumeError(
            f"resume={resume}: the run in {folder} finished ({done} epochs); resuming would train no further. "
            f"Give trainer.max_epochs > {done} to train on, or test it: {test}")


def _check_replayed_targets(recorded: Path, args: list[str]) -> None:
    """The config the replayed overrides compose to builds only what a file may name
    (experiments/trusted.py); the trust comes from this command line and conf/, never the file."""
    from experiments.trusted import check_targets

    plain = [a for a in args if not overrides.key(a).startswith(("hydra.", "hydra/")) and not a.startswith("-")]
    try:
        cfg = _compose([a for a in plain if overrides.key(a) != "resume"])
    except Exception:  # noqa: BLE001 - Hydra refuses the overrides itself, before building anything
        return
    trusted = list(cfg.get("trusted_packages") or [])
    content = OmegaConf.to_container(cfg, resolve=False)
    content.pop("hydra", None)
    check_targets(content, f"the config that its recorded overrides ({recorded}) compose", trusted)


def _read_record(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------- one run

def is_multirun(hydra_cfg: DictConfig | None = None) -> bool:
    """Whether this is a multirun job: of ``hydra_cfg``, or else of the running Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if hydra_cfg is None and HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
    return hydra_cfg is not None and hydra_cfg.get("mode") == RunMode.MULTIRUN


def is_rank_zero() -> bool:
    # Under SLURM every task runs the whole job; the rank comes from SLURM_PROCID / LOCAL_RANK.
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def write_text_atomic(path: Path, text: str) -> None:
    """Parallel jobs read and rewrite records and summaries: never let one see a half-written
    file, and leave no temporary file behind when the write fails (a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


class RunFolder:
    """Owns one run's folder from start to exit.

    On entry: the record (``job.json``, status ``running``), the signal handlers. Gives the
    trainer what keeps the folder trustworthy (``callbacks()``, ``plugins()``) and the
    checkpoint to resume from. On exit: the record's final status (``ok``, ``failed``,
    ``interrupted``), what to do next printed, and the error passed on, except for a failed
    job of a multirun, which is a row of the sweep's summary while the sweep goes on.
    """

    def __init__(self, cfg: DictConfig):
        from lightning_modules.guards import RunGuard

        self.cfg = cfg
        self.dir = Path(cfg.paths.output_dir)
        self.checkpoints = self.dir / "checkpoints"
        # A SLURM job requeued after its time-limit warning or a preemption runs again in the
        # same job folder, where its stop left a checkpoint: it continues from there.
        requeued = int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0 and (self.checkpoints / LAST).is_file()
        self.resuming = cfg.get("resume") is not None or requeued
        self.resume_from: str | None = cfg.get("ckpt_path") if cfg.get("train") else None
        if self.resuming and not self.resume_from:
            self.resume_from = str(self.checkpoints / LAST)
        self.multirun = is_multirun()
        self.guard = RunGuard(self.checkpoints / LAST)
        self.objective: float | None = None
        self.metrics: dict[str, Any] = {}
        self.record = self._load_record() if self.resuming else {}

    # -- what the trainer gets

    def callbacks(self) -> list:
        return [self.guard]

    def plugins(self) -> list:
        from lightning_modules.guards import AtomicCheckpointIO

        return [AtomicCheckpointIO()]

    def resume_step(self) -> int | None:
        """The global step of the checkpoint this run continues from (None for a new run)."""
        return checkpoints.global_step(self.resume_from) if self.resume_from else None

    def raise_if_signalled(self, step: int) -> None:
        """A signal that came outside a training step (set-up, validation, test) stops the run
        here, between phases, with the newest checkpoint on disk."""
        from lightning_modules.guards import RunInterrupted

        if self.guard.received is not None:
            last = self.checkpoints / LAST
            raise RunInterrupted(self.guard.received, str(last) if last.exists() else None, step)

    def finish(self, metrics: dict[str, Any], objective: float | None) -> None:
        self.metrics, self.objective = metrics, objective

    # -- the record

    def _load_record(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / JOB_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _write_record(self, **fields: Any) -> None:
        self.record.update(fields)
        if is_rank_zero():
            try:
                write_json_atomic(self.dir / JOB_FILE, self.record)
            except OSError as error:
                if error.errno not in DISK_FULL:
                    raise
                ownership.free_reserve(self.dir)  # the space the lock file held for this write
                write_json_atomic(self.dir / JOB_FILE, self.record)

    def _segment(self) -> dict[str, Any]:
        from hydra.core.hydra_config import HydraConfig

        task = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        array = [os.environ.get(k) for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")]
        return {"started": time.time(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "slurm_array_task": "_".join(array) if all(array) else None,  # squeue's name of the job
                "resumed_from": self.resume_from if self.resuming else None,
                "overrides": [o for o in task if overrides.key(o) != "resume"]}

    def __enter__(self) -> RunFolder:
        from hydra.core.hydra_config import HydraConfig

        if self.resume_from:
            checkpoints.read(self.resume_from)  # a missing, empty or damaged checkpoint: one paragraph
        if is_rank_zero():
            try:
                ownership.lock(self.dir)
            except ownership.FolderInUse as busy:
                raise ConfigError(f"{self.dir} is in use by {busy.holder}: another run is writing there. A run "
                                  "continues in its own folder only by resume=; start a new run without hydra.run.dir.") from None
        import torch

        segment = self._segment()
        segments = [*self.record.get("segments", []), segment]
        job = int(HydraConfig.get().job.num) if self.multirun else None
        try:
            self._write_record(
                job=job, overrides=segment["overrides"], status="running", error=None, pid=os.getpid(),
                torch_threads=torch.get_num_threads(),
                started=self.record.get("started", segment["started"]), segments=segments,
                resume_command=self.resume_command())
        except BaseException:
            ownership.unlock(self.dir)
            raise
        if threading_main():
            self.guard.install()
            self._thread_hook, threading.excepthook = threading.excepthook, self._thread_error
        return self

    def _thread_error(self, args: Any) -> None:
        """TensorBoard writes events from a thread, whose error on a full disk is raised again
        in the run (and told there, once): its own traceback is not printed."""
        if os_error(args.exc_value, DISK_FULL) is None:
            self._thread_hook(args)

    def __exit__(self, exc_type, exc: BaseException | None, tb) -> bool:
        try:
            return self._exit(exc, tb)
        finally:
            ownership.unlock(self.dir)
            if getattr(self, "_thread_hook", None) is not None:
                threading.excepthook, self._thread_hook = self._thread_hook, None

    def _exit(self, exc: BaseException | None, tb) -> bool:
        from lightning_modules.guards import RunInterrupted

        self.guard.uninstall()
        signalled = self.guard.received
        if isinstance(exc, SystemExit) and not isinstance(exc, RunInterrupted) and signalled is not None:
            # Lightning's own ways out after a signal: its SIGTERM stop mid-validation or at an
            # epoch's end (exit code 0) and its exit(1) after a second Ctrl-C. Both are this
            # signal's interruption, at the step of the newest checkpoint.
            last = self.checkpoints / LAST
            step = checkpoints.global_step(last) if last.exists() else -1
            stop = RunInterrupted(signalled, str(last) if last.exists() else None, step)
            self._exit(stop, tb)
            raise stop from exc
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C outside a training step
            last = self.checkpoints / LAST
            stop = RunInterrupted(signal.SIGINT, str(last) if last.exists() else None, -1)
            self._exit(stop, tb)
            raise stop from exc
        ended = time.time()
        segment = self.record["segments"][-1]
        status = "ok" if exc is None else "interrupted" if isinstance(exc, RunInterrupted) else "failed"
        error = None if exc is None else first_line(exc)
        monitor = self.cfg.get("monitor") or {}
        if status == "ok" and self.multirun and self.cfg.get("train") and self.objective is None:
            # Optuna records a NaN (or missing) objective as a failed trial; so does the summary.
            status, error = "failed", f"{monitor.get('metric')} is NaN or was never logged"
        segment.update(ended=ended, status=status)
        if status == "failed" and self.never_ran():
            # A single new run that failed before training (bad input, a model that cannot take
            # the data): nothing of it is left to clutter logs/ and TensorBoard; the error is printed.
            ownership.remove_own(self.dir)
            return False
        unwritten = None
        try:
            if status == "failed" and self.resuming and not self.guard.training_started and is_rank_zero():
                for path, content in _RECORD_BEFORE_RESUME.items():  # this attempt never ran
                    path.write_bytes(content)
            self._write_record(
                status=status, error=error, ended=ended, monitor=monitor.get("metric"), mode=monitor.get("mode"),
                objective=self.objective if status == "ok" else None,
                metrics={k: v for k, v in self.metrics.items() if isinstance(v, float)},
                checkpoint=self.metrics.get("best_model_path") or None,
                last_checkpoint=str(self.checkpoints / LAST) if (self.checkpoints / LAST).exists() else None,
                checkpoints=sorted(str(p) for p in self.checkpoints.glob("*.ckpt")),
                wall_s=round(sum(s.get("ended", ended) - s["started"] for s in self.record["segments"]), 3))
        except OSError as failed_write:  # a full disk: the run's own error is the one to tell
            if exc is None:
                raise
            unwritten = f"{JOB_FILE} could not be updated ({describe_os_error(failed_write)})"
        if exc is not None and is_rank_zero():
            exc.next_steps = self._next_steps(status, exc, unwritten)  # printed by the entry point
        if status == "interrupted" and self.multirun and is_rank_zero():
            from experiments.records import write_summary

            write_summary(self.dir.parent)  # the sweep stops here; its summary says so
        if status == "failed" and self.multirun and not isinstance(exc, SystemExit):
            log.error("Job %s failed; the sweep goes on\n%s", self.record.get("job"),
                      "\n".join(getattr(exc, "next_steps", [])), exc_info=exc)
            return True  # a row of the summary, not the end of the sweep
        return False

    def never_ran(self) -> bool:
        """A new single run (not a resume, not a sweep's job: those keep their record) that
        wrote no checkpoint and never started training."""
        return (not self.resuming and not self.multirun and not self.guard.training_started and is_rank_zero()
                and not any(self.checkpoints.glob("*.ckpt")))

    def resume_command(self) -> str:
        return overrides.command("experiments/run.py", overrides.assign("resume", str(self.dir)))

    def _next_steps(self, status: str, exc: BaseException, unwritten: str | None) -> list[str]:
        """What the user reads after the error: where the newest checkpoint is and what to do."""
        from lightning_modules.guards import NonFiniteLoss

        last = self.checkpoints / LAST
        lines = []
        if status == "interrupted":
            saved = getattr(exc, "checkpoint", None) or (str(last) if last.exists() else None)
            at = f" at step {exc.step}" if getattr(exc, "step", -1) >= 0 else ""
            lines.append(f"Run interrupted by {signal.Signals(exc.signum).name}{at}.")
            lines.append(f"Checkpoint: {saved}" if saved else "No checkpoint was written yet: start the run anew.")
            if saved:
                lines.append(f"Resume with: {self.resume_command()}")
        elif last.exists():
            full = os_error(exc, DISK_FULL)
            lines.append(f"The last good checkpoint is intact: {last}" if full else f"The last good checkpoint: {last}")
            if isinstance(exc, NonFiniteLoss):  # the same settings would diverge again
                lines.append("Start a new run with a smaller learning rate, or evaluate that checkpoint.")
            elif full:
                lines.append(f"Free space, then resume with: {self.resume_command()}")
            else:
                lines.append(f"Resume with: {self.resume_command()}")
        elif os_error(exc, DISK_FULL):
            lines.append("No checkpoint was written yet: free space, then start the run anew.")
        if unwritten:
            lines.append(unwritten + ".")
        return lines


def threading_main() -> bool:
    return threading.current_thread() is threading.main_thread()
