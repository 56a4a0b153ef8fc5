"""Picture cost: the time the TensorBoard picture callbacks (lightning_modules/pictures/) take in
an epoch of the run they draw for, measured inside the default run (``experiments.pipeline.fit_and_test``
with its default callbacks and TensorBoard logger), as a share of that epoch."""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections import defaultdict
from typing import Any

from benchmarks.common import framework_epoch, framework_warmup, median
from lightning_modules import pictures
from lightning_modules.pictures import publishing

# The model each picture is for, with its tutorial's schedule; (overrides, epochs).
CASES: dict[str, tuple[list[str], int]] = {
    "xor": (["experiment=xor"], 100),  # decision boundary, confusion matrix; validated every epoch
    "linear": (["experiment=linear"], 1000),  # fit; validated every 50 epochs
    "cnn": (["model=cnn", "data=fashion"], 1),  # labelled images, confusion matrix
}
# In each epoch: the picture callbacks' per-batch work and drawing. Once per fit: the graph.
TIMED = {
    pictures.StagePicture: ("_batch", "_end"),
    pictures.RegressionFit: ("on_train_batch_end",),
    pictures.ModelGraph: ("on_validation_batch_end",),
}


@contextlib.contextmanager
def timed_pictures():
    """Seconds spent in each picture callback's hooks, by class name, and the number of pictures
    published (under "drawings"), while the block runs."""
    totals: dict[str, float] = defaultdict(float)
    originals = [(publishing, "publish", publishing.publish)]

    def wrap(method):
        @functools.wraps(method)
        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                totals[type(self).__name__] += time.perf_counter() - started
        return timed

    def counted(*args, **kwargs):
        totals["drawings"] += 1
        return originals[0][2](*args, **kwargs)

    publishing.publish = counted
    for cls, names in TIMED.items():
        for name in names:
            originals.append((cls, name, cls.__dict__[name]))
            setattr(cls, name, wrap(cls.__dict__[name]))
    try:
        yield totals
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


def run(repeats: int = 1, device: str = "cpu", cases: list[str] | None = None, log=print) -> list[dict[str, Any]]:
    """Per case: the fit's wall time (every epoch, validation and pictures included), the time its
    pictures took in it, their share, and what one drawing costs."""
    from benchmarks.timing import EpochTimer

    rows = []
    workdir = tempfile.mkdtemp(prefix="bench-pictures-")
    for name in cases or list(CASES):
        overrides, epochs = CASES[name]
        framework_warmup(overrides, workdir, device)  # imports (matplotlib's too) and first-call costs
        runs = []
        for r in range(repeats):
            with timed_pictures() as totals:
                framework_epoch(overrides, workdir, device, epochs=epochs)
            fit_s = EpochTimer.fit_s  # the fit's wall time, the work between epochs included
            graph_s, drawings = totals.pop("ModelGraph", 0.0), int(totals.pop("drawings", 0))
            pictures_s = sum(totals.values())
            runs.append({"fit_s": fit_s, "pictures_s": pictures_s, "graph_s": graph_s, "drawings": drawings,
                         "epoch_s": median([record["epoch_s"] for record in EpochTimer.records])})
            log(f"pictures {name} repeat {r + 1}/{repeats}: {epochs} epochs in {fit_s:.2f} s, {drawings} pictures "
                f"in {pictures_s:.2f} s ({pictures_s / fit_s:.1%}), graph once {graph_s * 1000:.0f} ms")
        fit_s, pictures_s = median([x["fit_s"] for x in runs]), median([x["pictures_s"] for x in runs])
        drawing_s = median([x["pictures_s"] / max(x["drawings"], 1) for x in runs])
        epoch_s = median([x["epoch_s"] for x in runs])
        rows.append({
            "case": name,
            "overrides": " ".join(overrides),
            "epochs": epochs,
            "repeats": repeats,
            "fit_s": fit_s,
            "epoch_s": epoch_s,
            "drawings": median([x["drawings"] for x in runs]),
            "pictures_s": pictures_s,
            "share": pictures_s / fit_s,
            "per_drawing_s": drawing_s,
            "graph_once_s": median([x["graph_s"] for x in runs]),
        })
    return rows
