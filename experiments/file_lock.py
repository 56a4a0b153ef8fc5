"""An exclusive lock on a file, for what several processes write at once: an Optuna study's
creation (experiments/optuna_study.py) and a sweep's summary (experiments/sweep_report.py).
``fcntl.flock``: the kernel releases it when its holder dies, so a killed process leaves no
stale lock."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the lock on ``path`` (created if missing) for the block; waits for another holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
