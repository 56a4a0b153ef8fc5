"""What keeps a run's checkpoints trustworthy: a stop at a signal with a checkpoint at that step,
a stop at the first non-finite loss, random state carried across a resume, and checkpoints that
are written to a temporary file and renamed into place.

experiments/run_folder.py plugs these into every training run.
"""

from __future__ import annotations

import errno
import io
import math
import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class RunInterrupted(SystemExit):
    """A signal stopped the run. A SystemExit whose code is the shell's 128 + the signal (130 for
    Ctrl-C, 143 for SIGTERM): no ``except Exception`` on the way, Hydra's job runner included,
    takes it for a failure, and the process exits with that code."""

    def __init__(self, signum: int, checkpoint: str | None, step: int):
        self.signum, self.checkpoint, self.step = signum, checkpoint, step
        super().__init__(128 + signum)


class NonFiniteLoss(RuntimeError):
    pass


class CheckpointWriteError(OSError):
    pass


class StopOnSignal(Callback):
    """SIGTERM, SIGUSR1 (SLURM's warning before a time limit) and SIGINT stop training after the
    current step: a checkpoint of that step is written to ``checkpoint_path`` (Lightning saves the
    loops' and the loader's progress with it, so a resume continues with the next batch) and
    ``RunInterrupted`` is raised. A second Ctrl-C stops at once."""

    def __init__(self, checkpoint_path: str | Path):
        self.checkpoint_path = str(checkpoint_path)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after this step "
              "(Ctrl-C again to stop at once, without a checkpoint)", flush=True)

    def _stop_requested(self, trainer: Trainer) -> bool:
        if trainer.world_size > 1:  # every rank must stop at the same step to save together
            return trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        return self.received is not None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        if self._stop_requested(trainer):
            trainer.save_checkpoint(self.checkpoint_path)
            raise RunInterrupted(self.received or signal.SIGTERM, self.checkpoint_path, trainer.global_step)


class NonFiniteLossGuard(Callback):
    """Stops training at the first NaN/Inf training loss, naming the step, and refuses to write a
    checkpoint whose weights are not finite (so ``last.ckpt`` keeps the last good weights).

    On the CPU the loss is checked at each step's end; on a GPU the previous step's loss is
    checked instead, which is ready by then and so costs no wait for the current step."""

    def __init__(self) -> None:
        self._pending: tuple[torch.Tensor, int, int, int] | None = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return  # manual optimization without a returned loss
        current = (loss.detach(), trainer.global_step, trainer.current_epoch, batch_idx)
        if loss.device.type == "cpu":
            self._check(*current)
        else:
            if self._pending is not None:
                self._check(*self._pending)
            self._pending = current

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending is not None:
            self._check(*self._pending)
            self._pending = None

    @staticmethod
    def _check(loss: torch.Tensor, step: int, epoch: int, batch_idx: int) -> None:
        value = float(loss)
        if not math.isfinite(value):
            raise NonFiniteLoss(f"train/loss is {value} at global step {step} (epoch {epoch}, batch {batch_idx}): "
                                "training stopped; no checkpoint with these weights was written")

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        for name, tensor in checkpoint.get("state_dict", {}).items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteLoss(f"the weights are not finite ({name}) at global step {trainer.global_step}: "
                                    "training stopped; the checkpoint was not written")


class RandomStateCheckpoint(Callback):
    """Carries torch's, numpy's and Python's random state in the checkpoint, so that dropout and
    augmentation after a resume draw what the uninterrupted run drew. Stored as tensors and
    plain values: the checkpoint still loads with ``weights_only=True``."""

    def __init__(self) -> None:
        self._to_restore: dict | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Here rather than at load: the sanity check and set-up between the two draw nothing
        # the uninterrupted run drew.
        state, self._to_restore = self._to_restore, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        random.setstate(tuple(s if not isinstance(s, list) else tuple(s) for s in state["python"]))
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file in the same folder and renames it into place, so
    a crash or a full disk never leaves a truncated file under a checkpoint's name: the
    previous ``last.ckpt`` stays loadable. (Lightning's own save writes straight to the name.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        buffer = io.BytesIO()  # serialised first, so that a failed write is an OSError that says why
        torch.save(checkpoint, buffer)
        try:
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                kept = "the previous file is unchanged" if path.exists() else "no file was written"
                raise CheckpointWriteError(
                    exc.errno, f"could not write checkpoint {path}: {os.strerror(exc.errno)} ({kept}); "
                    f"free space under {path.parent} and resume") from exc
            raise
