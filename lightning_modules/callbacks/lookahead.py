"""Lookahead of the CIFAR-10 speed records (``callbacks=lookahead``)."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor, nn


class Lookahead(Callback):
    """Every ``every_n_steps`` training steps, a slow copy of the net's state (its weights and
    BatchNorm statistics: every floating-point entry of its ``state_dict``) moves towards the
    trained one, ``slow += (1 - decay) * (fast - slow)``, and the net continues from the slow copy.
    ``decay`` grows with training, ``max_decay * (step / total steps) ** power``: early steps keep
    their own weights, late ones are averaged over the last few dozen steps. At the last step the
    net takes the slow copy. As KellerJordan/cifar10-airbench (airbench94: every 5 steps, decay
    0.95**5 times the progress cubed).

    Unlike an average kept beside the net (``callbacks=ema``), the net always holds the weights it
    validates, checkpoints and tests, and its BatchNorm statistics follow them. The slow copy is
    in the checkpoint (``callbacks`` entry), so a resumed run goes on exactly.

    The net is the LightningModule's ``net`` (the task modules' wrapped ``nn.Module``), else the
    whole module.
    """

    def __init__(self, every_n_steps: int = 5, max_decay: float = 0.95**5, power: float = 3.0):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        if not 0.0 <= max_decay < 1.0:
            raise ValueError(f"max_decay must be in [0, 1), got {max_decay}")
        if power < 0:
            raise ValueError(f"power must be >= 0, got {power}")
        self.every_n_steps, self.max_decay, self.power = every_n_steps, max_decay, power
        self.slow: dict[str, Tensor] | None = None

    @staticmethod
    def averaged_state(pl_module: LightningModule) -> dict[str, Tensor]:
        """The entries that Lookahead averages: the net's floating-point state, in place."""
        net: nn.Module = getattr(pl_module, "net", pl_module)
        return {k: v for k, v in net.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int, total: int) -> float:
        if step >= total:
            return 1.0
        return self.max_decay * (step / total) ** self.power

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step, total = trainer.global_step, trainer.estimated_stepping_batches
        finite = math.isfinite(total)  # max_epochs=-1: no end, the decay stays at its most
        if step % self.every_n_steps and not (finite and step >= total):
            return
        state = self.averaged_state(pl_module)
        if self.slow is None:
            self.slow = {k: v.clone() for k, v in state.items()}
            return
        decay = self.decay(step, int(total)) if finite else self.max_decay
        for key, fast in state.items():
            slow = self.slow[key]
            if slow.device != fast.device:
                slow = self.slow[key] = slow.to(fast.device)
            slow.lerp_(fast, 1.0 - decay)
            fast.copy_(slow)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": self.slow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.slow = state_dict.get("slow")
