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
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

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
    parent_dir.mkdir(parents=True, exist_ok=True)
    middle = f"_{name}" if name else ""
    while True:
        path = parent_dir / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}{middle}_{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return str(path)
        except FileExistsError:
            continue


# ---------------------------------------------------------------- resume, before Hydra starts

def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(args: list[str], key: str) -> str | None:
    found = [a.split("=", 1)[1] for a in args if "=" in a and _key(a) == key]
    return found[-1] if found else None


# Groups whose option names a run: resume=latest with one of them on the command line picks
# the newest run of that option (``experiment=xor resume=latest``: the newest XOR experiment).
NAMING_GROUPS = ("experiment", "model", "data")


def _runs_root(args: list[str]) -> tuple[Path, dict[str, str]]:
    """``<paths.log_dir>/<task_name>/runs`` as these overrides compose it, and the options of
    NAMING_GROUPS that the overrides choose."""
    from hydra import compose, initialize_config_dir

    plain = [a for a in args if not a.startswith(("hydra.", "hydra/", "-"))]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("run", overrides=plain, return_hydra_config=True)
    chosen = {_key(a) for a in plain}
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
    the new ones, in the run's own folder. Other command lines are returned unchanged."""
    args = argv[1:]
    resume = _value(args, "resume")
    ckpt = _value(args, "ckpt_path")
    training = (_value(args, "train") or "true").lower() != "false"
    if ckpt == "last" and not training:  # test the newest run's last checkpoint
        path = latest_run(args, "ckpt_path=last") / "checkpoints" / LAST
        return [argv[0], *[a for a in args if _key(a) != "ckpt_path"], f"ckpt_path={path}"]
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
    new = [a for a in args if _key(a) not in ("resume", "hydra.run.dir") and not (ckpt == "last" and _key(a) == "ckpt_path")]
    folder = latest_run(new) if resume == "latest" else Path(resume).expanduser().resolve()
    recorded = folder / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        raise ResumeError(f"resume={resume}: {folder} is not a run folder (it has no .hydra/overrides.yaml). "
                          "Use resume=latest or the folder a run printed as 'Output:'.")
    if not ((folder / "checkpoints" / LAST).is_file() or _value(new, "ckpt_path") not in (None, "null")):
        raise ResumeError(f"resume={resume}: {folder} has no checkpoints/{LAST}: the run stopped before "
                          "its first checkpoint, so there is nothing to continue. Start it anew.")
    previous = [o for o in OmegaConf.to_container(OmegaConf.load(recorded))
                if _key(o) not in ("resume", "ckpt_path", "train")]
    changed = [o for o in new if _key(o).split(".")[0].split("/")[0] in FIXED_AT_RESUME and o not in previous]
    if changed:
        raise ResumeError(
            f"resume={resume}: {' '.join(changed)} would change what the checkpoint in {folder} was trained "
            f"as ({', '.join(FIXED_AT_RESUME)} are fixed for a run). Resume with other settings only "
            "(e.g. trainer.max_epochs=N), or start a new run.")
    _refuse_fewer_epochs(resume, folder, _value(new, "trainer.max_epochs"))
    _RECORD_BEFORE_RESUME.clear()
    for path in [*(folder / ".hydra").glob("*.yaml"), folder / "config_tree.log"]:
        if path.is_file():
            _RECORD_BEFORE_RESUME[path] = path.read_bytes()
    merged: dict[str, str] = {}
    for o in [*previous, *new]:  # the last value of a key wins, once
        merged.pop(_key(o), None)
        merged[_key(o)] = o
    return [argv[0], *merged.values(), f"resume={folder}", f"hydra.run.dir={folder}"]


def _refuse_fewer_epochs(resume: str, folder: Path, max_epochs: str | None) -> None:
    """Lightning counts epochs from the run's start and refuses a checkpoint past max_epochs
    with a traceback; say it before anything is written."""
    if max_epochs is None or not max_epochs.isdigit() or not (folder / "checkpoints" / LAST).is_file():
        return
    import torch

    checkpoint = torch.load(folder / "checkpoints" / LAST, map_location="cpu", weights_only=True, mmap=True)
    done = int(checkpoint.get("epoch", 0)) + 1  # the epoch it was saved in, counted from 0
    if int(max_epochs) < done:
        raise ResumeError(
            f"resume={resume}: trainer.max_epochs={max_epochs} is fewer than the {done} epochs {folder} has "
            f"trained (epochs count from the run's start). Give trainer.max_epochs > {done} to train on, or "
            f"test it as it is: python experiments/evaluate.py ckpt_path={folder / 'checkpoints' / LAST}")


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


def first_line(exc: BaseException) -> str:
    """The error's first line; for a wrapped error (Hydra's InstantiationException) its cause's."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def write_text_atomic(path: Path, text: str) -> None:
    """Parallel jobs read and rewrite records and summaries: never let one see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
        if not self.resume_from:
            return None
        import torch

        checkpoint = torch.load(self.resume_from, map_location="cpu", weights_only=True, mmap=True)
        return int(checkpoint.get("global_step", 0))

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
            write_json_atomic(self.dir / JOB_FILE, self.record)

    def _segment(self) -> dict[str, Any]:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        array = [os.environ.get(k) for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")]
        return {"started": time.time(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "slurm_array_task": "_".join(array) if all(array) else None,  # squeue's name of the job
                "resumed_from": self.resume_from if self.resuming else None,
                "overrides": [o for o in overrides if _key(o) != "resume"]}

    def __enter__(self) -> RunFolder:
        from hydra.core.hydra_config import HydraConfig

        if self.resume_from and not Path(self.resume_from).is_file():
            raise FileNotFoundError(f"ckpt_path={self.resume_from}: no such file")
        import torch

        segment = self._segment()
        segments = [*self.record.get("segments", []), segment]
        job = int(HydraConfig.get().job.num) if self.multirun else None
        self._write_record(
            job=job, overrides=segment["overrides"], status="running", error=None, pid=os.getpid(),
            torch_threads=torch.get_num_threads(),
            started=self.record.get("started", segment["started"]), segments=segments,
            resume_command=self.resume_command())
        if threading_main():
            self.guard.install()
        return self

    def __exit__(self, exc_type, exc: BaseException | None, tb) -> bool:
        from lightning_modules.guards import RunInterrupted

        self.guard.uninstall()
        signalled = self.guard.received
        if isinstance(exc, SystemExit) and not isinstance(exc, RunInterrupted) and signalled is not None:
            # Lightning's own ways out after a signal: its SIGTERM stop mid-validation (exit code 0)
            # and its exit(1) after a second Ctrl-C. Both are this signal's interruption.
            last = self.checkpoints / LAST
            stop = RunInterrupted(signalled, str(last) if last.exists() else None, -1)
            self.__exit__(RunInterrupted, stop, tb)
            raise stop from exc
        ended = time.time()
        segment = self.record["segments"][-1]
        status = "ok" if exc is None else "interrupted" if isinstance(exc, (RunInterrupted, KeyboardInterrupt)) else "failed"
        error = None if exc is None else first_line(exc)
        monitor = self.cfg.get("monitor") or {}
        if status == "ok" and self.multirun and self.cfg.get("train") and self.objective is None:
            # Optuna records a NaN (or missing) objective as a failed trial; so does the summary.
            status, error = "failed", f"{monitor.get('metric')} is NaN or was never logged"
        segment.update(ended=ended, status=status)
        if status == "failed" and self.never_ran():
            # A single new run that failed before training (bad input, a model that cannot take
            # the data): no folder is left to clutter logs/ and TensorBoard; the error is printed.
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)
            return False
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
        if is_rank_zero():
            self._tell(status, exc)
        if status == "interrupted" and self.multirun and is_rank_zero():
            from experiments.records import write_summary

            write_summary(self.dir.parent)  # the sweep stops here; its summary says so
        if status == "failed" and self.multirun and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            log.error("Job %s failed; the sweep goes on", self.record.get("job"), exc_info=exc)
            return True  # a row of the summary, not the end of the sweep
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C outside a training step
            raise RunInterrupted(signal.SIGINT, self.record.get("last_checkpoint"), -1) from exc
        return False

    def never_ran(self) -> bool:
        """A new single run (not a resume, not a sweep's job: those keep their record) that
        wrote no checkpoint and never started training."""
        return (not self.resuming and not self.multirun and not self.guard.training_started and is_rank_zero()
                and not any(self.checkpoints.glob("*.ckpt")))

    def resume_command(self) -> str:
        return f"python experiments/run.py resume={shlex.quote(str(self.dir))}"

    def _tell(self, status: str, exc: BaseException | None) -> None:
        last = self.checkpoints / LAST
        if status == "interrupted":
            saved = getattr(exc, "checkpoint", None) or (str(last) if last.exists() else None)
            what = signal.Signals(exc.signum).name if hasattr(exc, "signum") else "Ctrl-C"
            at = f" at step {exc.step}" if getattr(exc, "step", -1) >= 0 else ""
            lines = [f"Run interrupted by {what}{at}."]
            lines.append(f"Checkpoint: {saved}" if saved else "No checkpoint was written yet: start the run anew.")
            if saved:
                lines.append(f"Resume with: {self.resume_command()}")
        elif status == "failed":
            from experiments.command_line import explain
            from lightning_modules.guards import NonFiniteLoss

            if not self.multirun and exc is not None and explain(exc) is not None:
                return  # bad input: experiments/run.py prints it, in one paragraph

            lines = [f"Run failed: {first_line(exc) if exc else self.record.get('error')}"]
            if last.exists():
                lines.append(f"The last good checkpoint: {last}")
                if isinstance(exc, NonFiniteLoss):  # the same settings would diverge again
                    lines.append("Start a new run with a smaller learning rate, or evaluate that checkpoint.")
                else:
                    lines.append(f"Resume with: {self.resume_command()}")
        else:
            return
        print("\n".join(lines), file=sys.stderr, flush=True)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
