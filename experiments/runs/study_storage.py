"""Where an Optuna study lives (``hydra.sweeper.storage``; a trial's run gets the same text as
``trial.storage``), opened the same way by the sweep and by each of its jobs:

- ``sqlite:///<file>``: an SQLite file, for one machine (its locking is unsafe on a network file
  system);
- ``journal://<file>``: Optuna's journal storage, every change appended to one file under a lock
  that holds on a network file system (NFS), for jobs on several machines that share a folder
  (SLURM); ``journal:///shared/study.log`` is an absolute path;
- any other database URL (``postgresql://...``, ``mysql://...``): a database server.

A relative file is made absolute by the sweep (from its working folder), so that every job opens
the same file from wherever it runs. Heartbeats (a killed sweep's trials failed) need a database:
Optuna's journal storage has none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.config.errors import ConfigError

SQLITE = "sqlite:///"
JOURNAL = "journal://"


def storage_file(url: Any) -> Path | None:
    """The file of an SQLite or journal storage (None for any other storage)."""
    for prefix in (SQLITE, JOURNAL):
        if isinstance(url, str) and url.startswith(prefix) and len(url) > len(prefix):
            return Path(url[len(prefix):])
    return None


def absolute(url: Any) -> Any:
    """The storage with its file's path absolute: the jobs open it too, from wherever they run."""
    path = storage_file(url)
    if path is None:
        return url
    prefix = SQLITE if url.startswith(SQLITE) else JOURNAL
    return prefix + str(path.expanduser().resolve())


def open_storage(url: str, **heartbeat: Any) -> Any:
    """Optuna's storage at ``url``. ``heartbeat``: RDBStorage's heartbeat arguments, for a database
    (a journal has no heartbeat). An SQLite file is waited for while another process writes
    (SQLite's own default gives up after 5 s, and a study's jobs all write to it)."""
    import optuna

    if url.startswith(JOURNAL):
        if storage_file(url) is None:
            raise ConfigError(f"The study's storage {url} names no file: a journal file is journal://<file> "
                              "(journal:///shared/study.log, or a file relative to the folder the search starts in).")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage_file(url))))
    connect = {"connect_args": {"timeout": 60}} if url.startswith(SQLITE) else None
    return optuna.storages.RDBStorage(url, engine_kwargs=connect, **heartbeat)


def has_heartbeats(storage: Any) -> bool:
    """Whether the storage records trials' heartbeats (Optuna's database storage does)."""
    return callable(getattr(storage, "record_heartbeat", None))
