"""Files that several processes read and write: each written whole or not at all, and a lock for
what is read, changed and written back (a sweep's summary, an Optuna study's creation).

The lock is ``fcntl.flock``: the kernel releases it when its holder dies, so a killed process
leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def write_text_atomic(path: Path, text: str) -> None:
    """Never let a reader see a half-written file, and leave no temporary file behind when the
    write fails (a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
