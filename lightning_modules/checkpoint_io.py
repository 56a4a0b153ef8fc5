"""``AtomicCheckpointIO``: checkpoints written to a temporary file in the same folder and renamed
into place, so a crash or a full disk never leaves a truncated file under a checkpoint's name
(Lightning's own save writes straight to the name). experiments/runs/folder.py plugs it into
every run's trainer."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_modules.atomic_files import write_atomic


class CheckpointWriteError(OSError):
    pass


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file in the same folder and renames it into place, so
    a crash or a full disk never leaves a truncated file under a checkpoint's name: the
    previous ``last.ckpt`` stays loadable. (Lightning's own save writes straight to the name.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        buffer = io.BytesIO()  # serialised first, so that a failed write is an OSError that says why
        torch.save(checkpoint, buffer)
        try:
            write_atomic(path, buffer.getbuffer(), durable=True)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                kept = "the previous file is unchanged" if path.exists() else "no file was written"
                raise CheckpointWriteError(
                    exc.errno, f"could not write checkpoint {path}: {os.strerror(exc.errno)} ({kept}); "
                    f"free space under {path.parent} and resume") from None  # the message says it all
            raise
