"""Lightning's CSV logger, made safe to resume into the same folder."""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.loggers import CSVLogger


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` that keeps an existing ``metrics.csv``: Lightning's deletes it when the
    folder already has one, which would throw away the first part of a resumed run's metrics.

    purge_step: rows logged at this step or later are dropped (what the interrupted run logged
    after the checkpoint it resumes from), as TensorBoard's ``purge_step`` does for events.
    """

    def __init__(self, *args: Any, purge_step: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.purge_step = purge_step

    @property
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = os.path.join(self.log_dir, "metrics.csv")
        kept: list[dict[str, float]] = []
        if os.path.isfile(path):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
                    step = int(values.get("step", 0))
                    if self.purge_step is None or step < self.purge_step:
                        kept.append({**values, "step": step})
        writer = super().experiment  # removes the old file
        writer.metrics = kept + writer.metrics  # written back, in order, by the next save()
        return writer
