"""The job session (experiments/sweeps/job_stream.py) of the launchers built on submitit,
hydra/launcher=local and slurm: each job submitted through the launcher's executor as soon as the
sweep starts it, and what waits for its ``JobReturn``."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides

log = logging.getLogger(__name__)


class SubmititSession:
    """``launcher``: a submitit launcher of this project, whose ``_result(job, num, overrides,
    sweep_dir)`` turns a submitit job into a ``JobReturn`` (a lost job into a row)."""

    def __init__(self, launcher: Any, executor: Any, sweep_dir: Path):
        self.launcher, self.executor, self.sweep_dir = launcher, executor, sweep_dir

    def __enter__(self) -> SubmititSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def submit(self, num: int, overrides: list[str]) -> Callable[[], JobReturn]:
        """Submit job ``num`` now; what waits for its result (in a thread of the sweep)."""
        self.check(overrides)
        log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
        job = self.executor.submit(self.launcher, overrides, "hydra.sweep.dir", num, f"job_id_for_{num}",
                                   Singleton.get_state())
        self.submitted(job, num)
        return functools.partial(self.result, job, num, overrides)

    def check(self, overrides: list[str]) -> None:
        """Refuse a job before it is submitted (a launcher's own checks)."""

    def submitted(self, job: Any, num: int) -> None:
        """What a launcher says once a job is submitted."""

    def result(self, job: Any, num: int, overrides: list[str]) -> JobReturn:
        return self.launcher._result(job, num, overrides, self.sweep_dir)
