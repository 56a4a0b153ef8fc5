"""``RunGuard``: what keeps a run trustworthy while it trains (a stop at a signal with a checkpoint
at that step, a stop at the first non-finite loss, random state carried across a resume).
experiments/runs/folder.py plugs it, with lightning_modules/checkpoint_io.py, into every run."""

from __future__ import annotations

import math
import random
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer

from lightning_modules.lightning_internals import validates_after_this_batch

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


class RunGuard(Callback):
    """What a run's folder needs from training, in one callback (Lightning calls every
    callback's hooks around every step, so one callback costs a third of three):

    - **Signals.** SIGTERM, SIGUSR1 (SLURM's warning before a time limit) and SIGINT stop
      training after the current step: a checkpoint of that step is written to
      ``checkpoint_path`` (Lightning saves the loops' and the loader's progress with it, so a
      resume continues with the next batch) and ``RunInterrupted`` is raised. A second Ctrl-C
      stops at once. ``install()`` / ``uninstall()`` set and restore the handlers.
    - A signal during validation, or in a batch that validation follows (an epoch's last),
      stops at the first training step after that validation and its checkpoint (the batch's
      own checkpoint is written first): Lightning resumes a checkpoint of such a batch past
      the validation, which the run's record would then lack. So the guard takes the signals
      back from Lightning once training starts (Lightning's SIGTERM handler ends a validation
      after its current batch), and with several processes (DDP) once any stage starts:
      Lightning's handler broadcasts from inside the handler, at whatever collective the other
      ranks are in, and the ranks deadlock. Every rank stops at the same step.
    - **Non-finite loss.** The first NaN/Inf training loss stops training, naming the step; a
      checkpoint whose weights are not finite is never written, so ``last.ckpt`` keeps the last
      good weights. On the CPU each step's loss is checked at its end; on a GPU the previous
      step's, which is ready by then and so costs no wait.
    - **Random state.** torch's, numpy's and Python's generators travel in the checkpoint (as
      tensors and plain values: it still loads with ``weights_only=True``), so dropout and
      augmentation after a resume draw what the uninterrupted run drew.
    """

    def __init__(self, checkpoint_path: str | Path):
        self.checkpoint_path = str(checkpoint_path)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._pending: tuple[torch.Tensor, int, int, int] | None = None
        self._random_state: dict | None = None
        self.training_started = False

    @property
    def state_key(self) -> str:  # formatted by Lightning around each hook call
        return "RunGuard"

    # -- signals

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _take_back_signals(self, trainer: Trainer, training: bool = False) -> None:
        # Lightning registers its handlers (keeping ours as a chained one) just before a stage
        # runs. Outside training, its SIGTERM handler ending an evaluation after the current
        # batch is the quickest stop, and harmless in one process.
        ours = training or trainer.world_size > 1
        if ours and self._previous and threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._on_signal)

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_back_signals(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_back_signals(trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_back_signals(trainer)

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
        self._check_loss(trainer, outputs, batch_idx)
        if self._stop_requested(trainer):
            trainer.save_checkpoint(self.checkpoint_path, weights_only=False)  # with optimizer and loops
            if not validates_after_this_batch(trainer):
                raise RunInterrupted(self.received or signal.SIGTERM, self.checkpoint_path, trainer.global_step)

    # -- non-finite loss

    def _check_loss(self, trainer: Trainer, outputs: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return  # manual optimization without a returned loss
        current = (loss.detach(), trainer.global_step, trainer.current_epoch, batch_idx)
        if loss.device.type == "cpu":
            _raise_if_not_finite(*current)
        else:
            if self._pending is not None:
                _raise_if_not_finite(*self._pending)
            self._pending = current

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            _raise_if_not_finite(*pending)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        # The weights and buffers only: a metric's state may rightly be infinite (MaxMetric starts at -inf).
        for name, tensor in [*pl_module.named_parameters(), *pl_module.named_buffers()]:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteLoss(f"the weights are not finite ({name}) at global step {trainer.global_step}: "
                                    "training stopped; the checkpoint was not written")

    # -- random state

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._random_state = state_dict

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.training_started = True
        self._take_back_signals(trainer, training=True)
        # Here rather than at load: the sanity check and set-up between the two draw nothing
        # the uninterrupted run drew.
        state, self._random_state = self._random_state, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in state["python"]))
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _raise_if_not_finite(loss: torch.Tensor, step: int, epoch: int, batch_idx: int) -> None:
    value = float(loss)
    if not math.isfinite(value):
        raise NonFiniteLoss(f"train/loss is {value} at global step {step} (epoch {epoch}, batch {batch_idx}): "
                            "training stopped; no checkpoint with these weights was written")
