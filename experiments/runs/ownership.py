"""What this process may remove, and the one writer of a run folder.

A run that fails before it starts cleans up after itself, but only what it made: a folder it
created (``unique_dir``), or, in a folder that already existed (``hydra.run.dir=FOLDER``), the
entries that were not there before. A run folder is written by one process at a time: the
process holds an ``fcntl`` lock on its ``.lock`` file, which the kernel releases when the
process ends, however it ends (so a lock is never stale after a crash or SIGKILL).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from experiments.config.hydra_runtime import is_multirun

LOCK_FILE = ".lock"
# The lock file holds this much disk space for its run, given back when the run must write its
# final record on a full disk (``free_reserve``), so that job.json can still say "failed".
RESERVE_BYTES = 64 * 1024
_created: set[str] = set()  # folders this process made
_entries_before: dict[str, set[str]] = {}  # a folder that existed -> its entries then
_locks: dict[str, int] = {}  # folder -> the open lock file


class FolderInUse(Exception):
    def __init__(self, folder: Path, holder: str):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by {holder}")


def _id(folder: str | Path) -> str:
    return os.path.realpath(folder)


def made(folder: str | Path) -> None:
    """Note that this process created ``folder`` (so it may remove it)."""
    _created.add(_id(folder))


def existed(folder: str | Path) -> None:
    """Note what ``folder`` holds before this process writes there (nothing, if it does not exist)."""
    path = Path(folder)
    if path.is_dir() and _id(path) not in _created:
        _entries_before.setdefault(_id(path), set(os.listdir(path)))


def remove_own(folder: str | Path) -> None:
    """Remove what this process wrote in ``folder``: all of it if this process created the
    folder, else only the entries that were not there before; nothing in a folder of unknown origin."""
    key = _id(folder)
    unlock(folder)
    if key in _created:
        shutil.rmtree(folder, ignore_errors=True)
    elif key in _entries_before and Path(folder).is_dir():
        for name in set(os.listdir(folder)) - _entries_before[key]:
            path = Path(folder) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def removed_on_error(folder: str | Path) -> Iterator[None]:
    """Around a script's work in its output folder (evaluate, predict, export): when the work
    fails, what this process wrote there is removed (a sweep's job keeps its folder: its row)."""
    try:
        yield
    except Exception:
        if not is_multirun():
            remove_own(folder)
        raise


def lock(folder: str | Path) -> None:
    """Become the one writer of ``folder``; ``FolderInUse`` names the process that is."""
    key = _id(folder)
    if key in _locks:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 200).decode(errors="replace")
        os.close(fd)
        raise FolderInUse(Path(folder), _holder_of(text)) from None
    os.ftruncate(fd, 0)
    os.write(fd, _holder_line())
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:  # no room even for the reserve, or a file system without fallocate: run without it
        pass
    _locks[key] = fd


def free_reserve(folder: str | Path) -> None:
    """Give back the lock file's reserved space (for the last writes of a run on a full disk)."""
    fd = _locks.get(_id(folder))
    if fd is not None:
        os.ftruncate(fd, len(_holder_line()))


def _holder_of(text: str) -> str:
    pid, _, host = text.split("\n", 1)[0].strip().partition(" ")
    return f"PID {pid} on {host}" if pid else "another process"


def _holder_line() -> bytes:
    return f"{os.getpid()} {socket.gethostname()}\n".encode()


def unlock(folder: str | Path) -> None:
    fd = _locks.get(_id(folder))
    if fd is not None:
        free_reserve(folder)
        del _locks[_id(folder)]
        os.close(fd)  # closing the file releases the lock


def holder(folder: str | Path) -> str | None:
    """Who holds ``folder``'s lock now (None if nobody), without taking it."""
    path = Path(folder) / LOCK_FILE
    if _id(folder) in _locks or not path.is_file():
        return None
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_of(f.read(200).decode(errors="replace"))
        fcntl.flock(f, fcntl.LOCK_UN)
    return None
