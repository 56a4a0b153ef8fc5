"""A run's record, ``job.json``: its one type and its one reader and writer.

Every run writes it (experiments/runs/folder.py), a sweep job that failed before its run started
(experiments/sweeps/report.py) and a job that returned no result (experiments/sweeps/lost_jobs.py)
too; a sweep's summary gathers them (experiments/sweeps/summary.py). Written atomically: a
reader never sees half of one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.runs.files import write_json_atomic

JOB_FILE = "job.json"


class UnreadableRecord(ValueError):
    """A job.json that exists but cannot be read: empty, truncated, not JSON, not an object."""


@dataclass
class JobRecord:
    # running: started; ok: finished; failed: an error (its first line in ``error``); interrupted:
    # a signal, with a checkpoint to resume from; timeout: SLURM's time limit after the last requeue;
    # pruned: an Optuna trial that its study's pruner stopped early (``pruned`` says when).
    status: str = "running"
    error: str | None = None
    job: int | None = None  # the job's number in its sweep (None for a single run)
    overrides: list[str] = field(default_factory=list)  # the run's command line (its newest segment's)
    pid: int | None = None
    torch_threads: int | None = None
    started: float | None = None
    ended: float | None = None
    wall_s: float | None = None  # the time of all segments together
    # Each start of the run (the first, then each resume or requeue): started, ended, status, pid,
    # overrides, resumed_from, slurm_job_id, slurm_array_task.
    segments: list[dict[str, Any]] = field(default_factory=list)
    resume_command: str | None = None
    monitor: str | None = None  # the metric a sweep optimises (monitor.metric), and its mode
    mode: str | None = None
    objective: float | None = None  # its best value seen during fit; None unless status is ok
    metrics: dict[str, float] = field(default_factory=dict)  # the final metrics
    checkpoint: str | None = None  # the tested checkpoint (the best)
    last_checkpoint: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    # A pruned trial: its number, the epoch it stopped after (0-based, as reported), the value
    # reported there and the pruner (lightning_modules/callbacks/trial_pruning.py: Pruned).
    pruned: dict[str, Any] | None = None

    @classmethod
    def read(cls, folder: Path) -> JobRecord | None:
        """The record in ``folder`` (None if it has none); ``UnreadableRecord`` says why one cannot be read."""
        path = Path(folder) / JOB_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # empty, truncated, not JSON (UnicodeDecodeError too)
            raise UnreadableRecord(str(exc) or type(exc).__name__) from None
        if not isinstance(data, dict):
            raise UnreadableRecord(f"a JSON {type(data).__name__}, not an object")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, folder: Path) -> None:
        write_json_atomic(Path(folder) / JOB_FILE, dataclasses.asdict(self))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
