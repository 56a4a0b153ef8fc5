"""A sweep job that returned no result is a row of the summary, never the end of the sweep.

A job's process can die without a word (the kernel's OOM killer sends SIGKILL, a crash in C code,
``scancel``), or its scheduler can give up on it (too many time-outs). Each launcher of this
project (``parallel``, ``local`` and ``slurm`` under conf/hydra/launcher) finds out in its own way
why; all of them record the job here: its ``job.json`` says ``failed`` (or ``timeout``) with
that reason, and the launcher returns what a failed job returns (no value), so the sweep goes on,
writes its summary and exits 1 (experiments/sweeps/report.py), and Optuna records a failed trial.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from experiments.runs.naming import sweep_job_dir
from experiments.runs.record import JobRecord, UnreadableRecord


def lost_job(sweep_dir: Path, num: int, overrides: list[str], status: str, error: str) -> JobReturn:
    """Record job ``num`` of the sweep in sweep_dir as lost; the JobReturn its launcher returns."""
    # the job's folder as conf/run.yaml names it (hydra.sweep.subdir)
    record_lost_job(sweep_job_dir(sweep_dir, num, overrides), num, overrides, status, error)
    ret = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
    ret.return_value = None  # what a failed job returns: the sweepers take it for a failure
    return ret


def record_lost_job(job_dir: Path, job_num: int, overrides: list[str], status: str, error: str) -> None:
    """The row of a job that never returned: what its record had (a job killed mid-training has
    ``running``), with the status, the error and the checkpoints that exist."""
    try:
        record = JobRecord.read(job_dir) or JobRecord(overrides=list(overrides))
    except UnreadableRecord:
        record = JobRecord(overrides=list(overrides))  # the summary says what the lost job left
    checkpoints = sorted(str(p) for p in (job_dir / "checkpoints").glob("*.ckpt"))
    record.job, record.status, record.error, record.objective = job_num, status, error, None
    record.checkpoints = checkpoints
    record.last_checkpoint = next((c for c in checkpoints if c.endswith("last.ckpt")), None)
    record.ended = time.time()
    record.started = record.started or record.ended
    record.write(job_dir)


def process_death(exitcode: int | None, pid: int | None = None) -> str:
    """Why a job's process ended without returning a result, from its exit code."""
    who = f"its process (pid {pid})" if pid else "its process"
    if exitcode is None:
        return f"{who} ended without a result"
    if exitcode < 0:
        signum = -exitcode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        why = {signal.SIGKILL: "out of memory? (the kernel's OOM killer sends SIGKILL; `dmesg` says) "
                               "or killed by hand",
               signal.SIGSEGV: "a crash in native code", signal.SIGBUS: "a crash in native code",
               signal.SIGABRT: "aborted by native code"}.get(signum, "stopped before it could save anything")
        return f"killed by {name} (signal {signum}): {why}; {who} returned no result"
    return f"{who} exited with code {exitcode} without returning a result"
