"""Files that several processes read and write: each written whole or not at all, and a lock for
what is read, changed and written back (a sweep's summary, an Optuna study's creation).

The lock is ``fcntl.flock``: the kernel releases it when its holder dies, so a killed process
leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from lightning_modules.atomic_files import write_atomic


def write_text_atomic(path: Path, text: str) -> None:
    """Never let a reader see a half-written file (lightning_modules/atomic_files.py)."""
    write_atomic(path, text.encode())


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


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
