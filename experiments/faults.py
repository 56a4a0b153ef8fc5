"""Telling what went wrong from an exception: its one-line name, and the faults of the machine
(a full disk, a path that cannot be written) that are told in a paragraph instead of a traceback."""

from __future__ import annotations

import errno
import os

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
CANNOT_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR)


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
    where = f" {error.filename}" if error.filename else ""
    return f"{os.strerror(error.errno)}:{where}" if where else os.strerror(error.errno)
