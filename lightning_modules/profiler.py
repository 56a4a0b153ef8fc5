"""The trainer's default profiler: one that profiles nothing, at no cost."""

from __future__ import annotations

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler


class NullProfiler(PassThroughProfiler):
    """Records nothing, like Lightning's default ``PassThroughProfiler``, without its cost.

    Lightning wraps each of the dozens of hooks it calls per training step in
    ``trainer.profiler.profile(name)``; the pass-through profiler answers with a new
    generator-based context manager each time, which adds up to a few percent of a small
    model's step on a CPU (benchmarks/overhead.py). This one returns a single reusable null context.
    ``trainer.profiler=simple`` (or ``advanced``, ``pytorch``) picks a real profiler instead.
    """

    _null = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:
        return self._null
