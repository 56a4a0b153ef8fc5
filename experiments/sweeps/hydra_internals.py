"""The private parts of Hydra and its plugins this project reads (tests/test_library_internals.py
fails when they change):

- a JobReturn's stored outcome, without raising the failed job's error (``_return_value``);
- the submitit launcher's kind of executor (``_EXECUTOR``: "slurm" or "local");
- Hydra's basic launcher (``hydra._internal.core_plugins``), which runs a job in the sweep's own
  process, one at a time (experiments/sweeps/job_stream.py).
"""

from __future__ import annotations

from typing import Any


def stored_outcome(job_return: Any) -> Any:
    """What a job returned, or the exception a failed job raised (``return_value`` would raise it)."""
    return job_return._return_value


def submitit_executor(launcher: Any) -> str:
    return launcher._EXECUTOR


def runs_jobs_in_process(launcher: Any) -> bool:
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    return isinstance(launcher, BasicLauncher)
