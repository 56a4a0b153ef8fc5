"""Jobs started one at a time and collected as each ends, so that a search (experiments/sweeps/
optuna_study.py) starts its next trial in the slot a job has just left, instead of waiting for
the slowest job of a batch (Hydra's launchers take whole batches: ``launch(jobs)`` returns when
all have ended).

The launchers of this project (hydra/launcher=parallel, local, slurm) open a session
(``launcher.job_session()``, a context manager) whose ``submit(num, overrides)`` starts one job and
returns what waits for its ``JobReturn``; each wait runs in a thread of the sweep. Hydra's basic
launcher runs a job in the sweep's own process: one at a time, each told before the next is
asked. Any other launcher gets batches of ``n_jobs``, as Hydra's Optuna sweeper gives them.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import threading
from typing import Any, Callable

from experiments.sweeps.hydra_internals import runs_jobs_in_process

log = logging.getLogger(__name__)


class JobStream:
    """``start(num, overrides)`` a job, get a future of its ``JobReturn`` (None: the job was
    stopped by the sweep's signal); ``wait`` for the first to end. ``slots``: how many jobs run
    at once. ``stop_code``: set when the sweep must stop (a signal): start no more jobs."""

    slots: int = 1
    stop_code: int | None = None

    def __enter__(self) -> JobStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def start(self, num: int, overrides: list[str]) -> futures.Future:
        raise NotImplementedError

    def wait(self, running: set[futures.Future], timeout: float) -> set[futures.Future]:
        done, _ = futures.wait(running, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        return done


class SessionStream(JobStream):
    """A launcher's session of this project: each job submitted at once, waited for in a thread."""

    def __init__(self, launcher: Any, slots: int):
        self.launcher, self.slots = launcher, max(1, slots)
        self.session: Any = None

    def __enter__(self) -> SessionStream:
        self.session = self.launcher.job_session().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.session.__exit__(*exc)

    @property
    def stop_code(self) -> int | None:  # type: ignore[override]
        return getattr(self.session, "stop_code", None)

    def start(self, num: int, overrides: list[str]) -> futures.Future:
        waiter: Callable[[], Any] = self.session.submit(num, list(overrides))
        future: futures.Future = futures.Future()

        def wait() -> None:
            try:
                future.set_result(waiter())
            except BaseException as error:  # noqa: BLE001 - raised again in the sweep, by future.result()
                future.set_exception(error)

        # A daemon: a sweep that stops on an error does not wait for its jobs' waits to end.
        threading.Thread(target=wait, name=f"job {num}", daemon=True).start()
        return future


class BatchStream(JobStream):
    """A launcher that only takes batches: the jobs started are launched together when the sweep
    waits, and all end together."""

    def __init__(self, launcher: Any, slots: int):
        self.launcher, self.slots = launcher, max(1, slots)
        self.queued: list[tuple[int, list[str], futures.Future]] = []

    def start(self, num: int, overrides: list[str]) -> futures.Future:
        future: futures.Future = futures.Future()
        self.queued.append((num, list(overrides), future))
        return future

    def wait(self, running: set[futures.Future], timeout: float) -> set[futures.Future]:
        batch, self.queued = self.queued, []
        if batch:
            returns = self.launcher.launch([overrides for _, overrides, _ in batch], initial_job_idx=batch[0][0])
            for (_, _, future), ret in zip(batch, returns):
                future.set_result(ret)
        return {f for f in running if f.done()}


def job_stream(launcher: Any, n_jobs: int) -> JobStream:
    """The stream of jobs ``launcher`` can give, ``n_jobs`` at once where it runs several."""
    if hasattr(launcher, "job_session"):
        return SessionStream(launcher, n_jobs)
    if runs_jobs_in_process(launcher):
        if n_jobs > 1:
            log.info("Hydra's basic launcher runs one job at a time (hydra.sweeper.n_jobs=%d is not used); "
                     "hydra/launcher=parallel runs n_jobs trials at once", n_jobs)
        return BatchStream(launcher, 1)
    log.warning("%s launches trials in batches of hydra.sweeper.n_jobs=%d: a batch's next trials wait for its "
                "slowest; hydra/launcher=parallel, local or slurm start each trial as soon as a slot is free",
                type(launcher).__name__, n_jobs)
    return BatchStream(launcher, n_jobs)
