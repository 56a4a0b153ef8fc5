"""The clock the epochs of the framework, bare Lightning and the plain loop are timed by
(benchmarks/timing.py, benchmarks/plain.py): wall time, or the main thread's CPU time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

_clock = time.perf_counter


def clock() -> float:
    """Seconds on the clock the epochs are timed by: wall time, or within ``cpu_clock()`` the
    calling thread's CPU time."""
    return _clock()


@contextlib.contextmanager
def cpu_clock() -> Iterator[None]:
    """Time by the main thread's CPU time, with torch on that one thread, so that everything an
    epoch computes is counted and the time other processes hold the cores is not: on a shared
    machine a steadier measure of how much work each side does (not of how long a run takes)."""
    global _clock
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _clock = time.thread_time
    try:
        yield
    finally:
        _clock = time.perf_counter
        torch.set_num_threads(threads)
