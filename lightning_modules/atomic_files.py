"""Writing a file whole or not at all: the bytes go to a temporary file beside it, which is then
renamed over the name, so a reader (TensorBoard, an image viewer, a resume, a sweep's summary)
never sees half a file and a crash or a full disk leaves the previous file as it was, and no
temporary file. The one atomic writer of checkpoints, pictures, records and summaries."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | memoryview, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; ``durable``: on disk (fsync) before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_atomic(source: str | Path, path: str | Path) -> bool:
    """``path`` made a hard link to ``source`` (the same bytes, not written again), replacing
    ``path`` atomically; False where the file system has no hard links (then write it instead)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True
