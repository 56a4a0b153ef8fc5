"""The model's graph in TensorBoard's Graphs tab."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch
from lightning import Callback

from lightning_modules.pictures.publishing import tensorboards

log = logging.getLogger(__name__)


class ModelGraph(Callback):
    """The model's graph in TensorBoard's Graphs tab, traced once per fit on one real sample of
    the first validation batch, in eval mode; a net that cannot be traced is skipped with a
    one-line note. That batch is the sanity check's when there is one (the default), so the
    tracing comes before training, where Lightning logs its own graph, not in an epoch."""

    def __init__(self):
        self.done = False

    def on_fit_start(self, trainer, pl_module) -> None:
        self.done = not trainer.is_global_zero

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.done:
            return
        self.done = True
        if not (loggers := tensorboards(trainer)) or not isinstance(batch, (tuple, list)):
            return
        with torch.inference_mode(False):  # tracing records a graph: no inference tensors
            sample = batch[0][:1].clone()
            for logger in loggers:
                try:
                    # torch prints its own error line, and warns that jit tracing (add_graph's) is deprecated
                    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                        warnings.filterwarnings("ignore", category=FutureWarning, message=".*jit.*deprecated")
                        logger.experiment.add_graph(pl_module, sample)
                except Exception as exc:  # a net that tracing does not support: no graph, no failure
                    log.info("No model graph in TensorBoard: tracing %s failed (%s: %s)",
                             type(pl_module).__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
