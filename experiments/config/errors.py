"""The one place that turns an error into what the user reads.

Bad input and known faults (a NaN loss, a full disk, a folder that cannot be written, a checkpoint
that is not one) are one paragraph and exit code 1, with no traceback; anything else (a bug, in
this project or in a user's own code) shows its traceback, once. ``HYDRA_FULL_ERROR=1`` shows
every traceback. An entry point wraps its work in ``one_paragraph_errors()``; before Hydra starts,
a refused command line goes through ``fail``.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from contextlib import contextmanager

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
CANNOT_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR)
# Errors of lightning_modules/ and datamodules/ that are a paragraph, named (not imported: that
# would import torch to tell a bad command line).
TOLD_BY_NAME = ("FashionMNISTUnavailable", "NonFiniteLoss", "ContractError", "DataError")


class ConfigError(ValueError):
    """Bad input: its message is the paragraph."""


def fail(error: Exception, code: int = 1) -> None:
    """Print ``error`` as the paragraph and exit with ``code`` (raise it under HYDRA_FULL_ERROR=1)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(str(error), file=sys.stderr, flush=True)
    sys.exit(code)


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it (``raise ... from``), or what it was raised during."""
    seen = [exc]
    while True:
        nxt = seen[-1].__cause__ or seen[-1].__context__
        if nxt is None or nxt in seen:
            return seen
        seen.append(nxt)


def first_line(exc: BaseException) -> str:
    """The error's first line; for a wrapped error (Hydra's InstantiationException) its cause's."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, OSError) and exc.strerror and exc.filename is None:  # not "[Errno 28] ..."
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def os_error(exc: BaseException, codes: tuple[int, ...]) -> OSError | None:
    """The OSError with one of ``codes`` in ``exc``'s chain, if there is one."""
    return next((e for e in chain(exc) if isinstance(e, OSError) and e.errno in codes), None)


def describe_os_error(error: OSError) -> str:
    return f"{os.strerror(error.errno)}: {error.filename}" if error.filename else os.strerror(error.errno)


def explain(exc: BaseException) -> str | None:
    """The paragraph for an error caused by bad input or a known fault; None for anything else."""
    from hydra.errors import InstantiationException

    causes = [exc]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)
    for error in causes:
        if isinstance(error, ConfigError) or type(error).__name__ in TOLD_BY_NAME:
            return str(error)
        if type(error).__name__ == "CheckpointWriteError":
            return error.strerror
    full = os_error(exc, DISK_FULL)
    if full is not None:
        return f"the disk is full ({describe_os_error(full)})."
    cannot = os_error(exc, CANNOT_WRITE)
    if cannot is not None:
        return (f"{describe_os_error(cannot)}. Check that paths.log_dir (and paths.data_dir) name folders "
                "this user can write to, with names of at most 255 bytes.")
    cause = causes[-1]
    if isinstance(exc, InstantiationException) and isinstance(cause, (ValueError, TypeError, ImportError)):
        key = re.search(r"full_key: (\S+)", str(exc))
        target = re.search(r"target '([^']+)'", str(exc))
        return f"{key.group(1) if key else 'config'}: {cause} ({target.group(1) if target else 'while building it'})."
    if isinstance(cause, RuntimeError) and "Error(s) in loading state_dict" in str(cause):
        return ("The checkpoint's weights do not fit this model (" + str(cause).splitlines()[0] + "). Test a "
                "checkpoint as it was trained with python experiments/evaluate.py ckpt_path=PATH.")
    return None


@contextmanager
def one_paragraph_errors():
    """The entry point's one error handler. Bad input and known faults: one paragraph (after
    "Run failed:" and what the run folder says to do next, when a run had started: the
    exception's ``next_steps``, experiments/runs/folder.py), exit code 1. Anything else: the same
    lines, then the traceback, once. A signal's stop: what the run folder says, and its exit code."""
    try:
        yield
    except SystemExit as stop:  # a signal's stop (lightning_modules/run_guard.py RunInterrupted)
        _say(getattr(stop, "next_steps", None) or [])
        raise
    except Exception as exc:
        message = explain(exc)
        steps = getattr(exc, "next_steps", None)
        if steps is not None:
            _say([f"Run failed: {message or first_line(exc)}", *steps])
        elif message is not None:
            _say([message])
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(1) from None


def _say(lines: list[str]) -> None:
    if lines:
        print("\n".join(lines), file=sys.stderr, flush=True)
