"""One run's folder, and the one place that owns it while the run lasts: its lock, its record
``job.json``, the signals, the checkpoint it resumes from, and what a finished, failed or
interrupted run leaves there (``with RunFolder(cfg) as folder: ...``, experiments/pipeline.py).

The folder itself is made by ``${unique_dir:}`` (experiments/runs/naming.py), or is an earlier
run's on resume (experiments/runs/resume.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from experiments.config import overrides
from experiments.config.errors import DISK_FULL, ConfigError, describe_os_error, first_line, os_error
from experiments.config.hydra_runtime import is_multirun
from experiments.runs import checkpoints, ownership
from experiments.runs.checkpoints import LAST
from experiments.runs.record import JOB_FILE, JobRecord, UnreadableRecord
from experiments.runs.resume import put_back_record
from experiments.runs.trial import StudyTrial, trial_of

log = logging.getLogger(__name__)


def is_rank_zero() -> bool:
    """Whether this process writes the run's files: under SLURM every task runs the whole job,
    and only rank 0 (from SLURM_PROCID / LOCAL_RANK) writes."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


class RunFolder:
    """Owns one run's folder from start to exit.

    On entry: the folder's lock (experiments/runs/ownership.py), the record (``job.json``,
    status ``running``), the signal handlers. Gives the trainer what keeps the folder
    trustworthy (``callbacks()``, ``plugins()``) and the checkpoint to resume from; a run that is
    an Optuna trial (``cfg.trial``) also reports to it and stops when pruned
    (experiments/runs/trial.py). On exit: the record's final status (``ok``, ``failed``,
    ``interrupted``, ``pruned``), and the error passed on with
    ``next_steps`` (where the newest checkpoint is, what to do), which the entry point prints
    (experiments/config/errors.py), except for a failed job of a multirun, which is a row of the
    sweep's summary while the sweep goes on. It prints nothing itself.
    """

    def __init__(self, cfg: DictConfig):
        from lightning_modules.run_guard import RunGuard

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
        self.record = self._load_record() if self.resuming else JobRecord()
        self.trial: StudyTrial | None = None  # the Optuna trial this run is, if it is one
        self.pruning: Any = None  # its TrialPruning callback, when its study prunes

    @property
    def pruned(self) -> Any:
        """How the trial's pruner stopped the fit (lightning_modules/callbacks/trial_pruning.py), or None."""
        return self.pruning.pruned if self.pruning is not None else None

    # -- what the trainer gets

    def callbacks(self) -> list:
        return [self.guard, *([self.pruning] if self.pruning is not None else [])]

    def plugins(self) -> list:
        from lightning_modules.checkpoint_io import AtomicCheckpointIO

        return [AtomicCheckpointIO()]

    def resume_step(self) -> int | None:
        """The global step of the checkpoint this run continues from (None for a new run)."""
        return checkpoints.global_step(self.resume_from) if self.resume_from else None

    def raise_if_signalled(self, step: int) -> None:
        """A signal that came outside a training step (set-up, validation, test) stops the run
        here, between phases, with the newest checkpoint on disk."""
        from lightning_modules.run_guard import RunInterrupted

        if self.guard.received is not None:
            last = self.checkpoints / LAST
            raise RunInterrupted(self.guard.received, str(last) if last.exists() else None, step)

    def finish(self, metrics: dict[str, Any], objective: float | None) -> None:
        self.metrics, self.objective = metrics, objective

    # -- the record

    def _load_record(self) -> JobRecord:
        try:
            return JobRecord.read(self.dir) or JobRecord()
        except UnreadableRecord:
            return JobRecord()  # rewritten from here on

    def _write_record(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self.record, name, value)
        if is_rank_zero():
            try:
                self.record.write(self.dir)
            except OSError as error:
                if error.errno not in DISK_FULL:
                    raise
                ownership.free_reserve(self.dir)  # the space the lock file held for this write
                self.record.write(self.dir)

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
        self.trial = trial_of(self.cfg)  # a trial that cannot be found: one paragraph
        if self.trial is not None:
            self.pruning = self.trial.callback(str(self.cfg.monitor.metric), is_rank_zero())
        if is_rank_zero():
            try:
                ownership.lock(self.dir)
            except ownership.FolderInUse as busy:
                raise ConfigError(f"{self.dir} is in use by {busy.holder}: another run is writing there. A run "
                                  "continues in its own folder only by resume=; start a new run without hydra.run.dir.") from None
        import torch

        segment = self._segment()
        segments = [*self.record.segments, segment]
        job = int(HydraConfig.get().job.num) if self.multirun else None
        try:
            self._write_record(
                job=job, overrides=segment["overrides"], status="running", error=None, pid=os.getpid(),
                torch_threads=torch.get_num_threads(),
                started=self.record.started or segment["started"], segments=segments,
                resume_command=self.resume_command())
        except BaseException:
            ownership.unlock(self.dir)
            raise
        if threading_main():
            self.guard.install()
            self._thread_hook, threading.excepthook = threading.excepthook, self._thread_error
        if self.trial is not None and not self.multirun and is_rank_zero():
            self.trial.keep_alive()  # no sweep does: a resumed trial's own heartbeat
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
            if self.trial is not None:
                self.trial.stop_heartbeats()
            ownership.unlock(self.dir)
            if getattr(self, "_thread_hook", None) is not None:
                threading.excepthook, self._thread_hook = self._thread_hook, None

    def _exit(self, exc: BaseException | None, tb) -> bool:
        from lightning_modules.run_guard import RunInterrupted

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
        segment = self.record.segments[-1]
        status = "ok" if exc is None else "interrupted" if isinstance(exc, RunInterrupted) else "failed"
        error = None if exc is None else first_line(exc)
        monitor = self.cfg.get("monitor") or {}
        pruned = self.pruned if status == "ok" else None
        if pruned is not None:
            status = "pruned"  # not a failure: the study's pruner stopped it (checkpoints kept)
            self.objective = None  # what a search optimises is a completed trial's value
        elif status == "ok" and self.multirun and self.cfg.get("train") and self.objective is None:
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
                put_back_record()  # this attempt never ran
            self._write_record(
                status=status, error=error, ended=ended, monitor=monitor.get("metric"), mode=monitor.get("mode"),
                objective=self.objective if status == "ok" else None,
                metrics={k: v for k, v in self.metrics.items() if isinstance(v, float)},
                checkpoint=self.metrics.get("best_model_path") or None,
                last_checkpoint=str(self.checkpoints / LAST) if (self.checkpoints / LAST).exists() else None,
                checkpoints=sorted(str(p) for p in self.checkpoints.glob("*.ckpt")),
                wall_s=round(sum(s.get("ended", ended) - s["started"] for s in self.record.segments), 3),
                pruned=dataclasses.asdict(pruned) if pruned is not None else None)
        except OSError as failed_write:  # a full disk: the run's own error is the one to tell
            if exc is None:
                raise
            unwritten = f"{JOB_FILE} could not be updated ({describe_os_error(failed_write)})"
        if self.trial is not None and not self.multirun and is_rank_zero():
            self.trial.tell(status, self.objective if status == "ok" else None)  # in a sweep, the sweeper tells
        if exc is not None and is_rank_zero():
            exc.next_steps = self._next_steps(status, exc, unwritten)  # printed by the entry point
        if status == "failed" and self.multirun and not isinstance(exc, SystemExit):
            log.error("Job %s failed; the sweep goes on\n%s", self.record.job,
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
        from lightning_modules.run_guard import NonFiniteLoss

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
