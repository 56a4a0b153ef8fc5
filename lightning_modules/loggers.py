"""Lightning's loggers as runs use them: the CSV logger made safe to resume into the same
folder, and the TensorBoard logger without the ``epoch`` scalar and with the curves' layout."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_modules.lightning_internals import open_csv_writer


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
        if (writer := open_csv_writer(self)) is not None:
            return writer
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


class DashboardTensorBoardLogger(TensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` for a dashboard that opens on the curves:

    - no ``epoch`` scalar (Lightning adds one to every logged row; the x axis already says it);
    - a custom scalars layout (the CUSTOM SCALARS page), written with the first validation
      metrics, when the tags are known: one chart per validation metric, train and val together
      (``loss``, ``accuracy`` for ``acc``, ``mse``, a metric of the config's ``metrics`` ...).
    """

    CHART_TITLES = {"acc": "accuracy"}  # else the metric's own name

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._layout_written = False

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = {k: v for k, v in metrics.items() if k != "epoch"}
        if metrics:
            super().log_metrics(metrics, step)
        if not self._layout_written and any(k.startswith("val/") for k in metrics):
            self.write_layout(metrics)

    def write_layout(self, val_metrics: Mapping[str, Any]) -> None:
        names = [key.split("/", 1)[1] for key in val_metrics if key.startswith("val/") and not key.endswith("_best")]
        charts = [[self.CHART_TITLES.get(name, name), ["Multiline", [f"^(train|val)/{name}$"]]]
                  for name in sorted(names, key=lambda n: (n != "loss", n))]
        if charts:
            self.experiment.add_custom_scalars({"train vs val": dict(charts)})
        self._layout_written = True
