"""``hydra/launcher=parallel`` (conf/hydra/launcher/parallel.yaml): ``n_jobs`` jobs of a sweep at
once on this machine, each in a process of its own, so that a job that dies is that job's row.

Hydra's joblib launcher runs jobs in loky's worker pool, and loky ends the whole pool when one
worker dies (the kernel's OOM killer, a crash in native code): the sweep stops with a
``TerminatedWorkerError`` traceback, its running jobs are left ``running`` and the rest never run.
Here joblib keeps the ``n_jobs`` slots (threads of the sweep's process), and each slot runs its
job in a child process forked by a fork server that imported torch, Lightning and this project
once (``preload``), so a job starts as fast as in a warm loky worker. A child that dies is one
``failed`` row naming the signal (experiments/sweeps/lost_jobs.py), and the other jobs go on.

Signals: each job runs in a process group of its own, and the sweep's process forwards SIGTERM,
SIGUSR1 and SIGINT (a terminal's Ctrl-C reaches only the sweep) to its running jobs once; they
stop at a checkpoint as a single run does, no further job starts, and the sweep exits 128 + N. If
the sweep's process itself is killed, its jobs get SIGTERM and stop the same way.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals

from experiments.runs.files import held
from experiments.sweeps.lost_jobs import lost_job, process_death
from experiments.sweeps.report import LOCK_FILE
from experiments.sweeps.summary import write_summary

log = logging.getLogger(__name__)
# The signals a run stops at with a checkpoint (lightning_modules/run_guard.py STOP_SIGNALS;
# tests/test_sweeps.py checks that they agree).
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class ProcessPerJob:
    """Mixed into joblib's launcher by hydra_plugins/lightning_hydra_lab (Hydra takes launchers
    only from that namespace). Config keys: ``n_jobs`` (joblib's: -1 = one job per core),
    ``verbose`` (joblib's), ``preload`` (the modules the fork server imports)."""

    config: Any
    task_function: Any
    hydra_context: Any
    joblib: dict[str, Any]

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed

        jobs = self.job_session()
        n_jobs = int(self.joblib.get("n_jobs") or -1)
        log.info("Launching %d jobs, %s at once, each in its own process; sweep output dir: %s",
                 len(job_overrides), n_jobs if n_jobs > 0 else f"n_jobs={n_jobs}", jobs.sweep_dir)
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        with jobs:
            return Parallel(n_jobs=n_jobs, backend="threading", verbose=int(self.joblib.get("verbose") or 0))(
                delayed(jobs.run)(idx, list(overrides))
                for idx, overrides in enumerate(job_overrides, start=initial_job_idx))

    def job_session(self) -> _Jobs:
        """Jobs started one at a time, each in its own process, while the sweep's signals are
        forwarded to them (``with``); a search starts each as a slot frees (experiments/sweeps/job_stream.py)."""
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        return _Jobs(self, sweep_dir, list(self.joblib.get("preload") or []))


class _Jobs:
    """The jobs of one launch or session: their processes, and the signal that stops them."""

    def __init__(self, launcher: ProcessPerJob, sweep_dir: Path, preload: list[str]):
        self.launcher, self.sweep_dir = launcher, sweep_dir
        self.context = _fork_server(preload)
        self.running: dict[int, Any] = {}  # job number -> its process
        self.lock = threading.Lock()
        self.signalled: int | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> _Jobs:
        self.forwarding = _Forwarding(self)
        self.forwarding.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.forwarding.__exit__()
        if self.exit_code is not None and exc is None:  # a signal, or a job's own exit: the sweep stops here, summarised
            with held(self.sweep_dir / LOCK_FILE):
                write_summary(self.sweep_dir)
            raise SystemExit(self.exit_code)

    @property
    def stop_code(self) -> int | None:
        return self.exit_code

    def submit(self, num: int, overrides: list[str]) -> Callable[[], JobReturn | None]:
        """What runs job ``num`` and returns its result (called in a thread of the sweep)."""
        return functools.partial(self.run, num, overrides)

    def run(self, num: int, overrides: list[str]) -> JobReturn | None:
        """One slot's job: start its process, wait for its result; a process that died is a row."""
        import cloudpickle

        launcher = self.launcher
        payload = cloudpickle.dumps((num, overrides, launcher.hydra_context, launcher.config, launcher.task_function,
                                     Singleton.get_state()))
        receive, send = self.context.Pipe(duplex=False)
        watched, sweep_alive = self.context.Pipe(duplex=False)  # the job's end reads EOF when the sweep dies
        process = self.context.Process(target=_job_process, args=(payload, send, watched), name=f"job {num}",
                                       daemon=False)
        if self.exit_code is not None:
            return None  # the sweep is stopping: this job never starts
        try:
            process.start()  # outside the lock: the first start waits for the fork server's imports
        except Exception as exc:  # noqa: BLE001 - e.g. no memory left to fork: this job's row
            for end in (send, receive, watched, sweep_alive):
                end.close()
            log.error("Job %d could not start: %s", num, exc)
            return lost_job(self.sweep_dir, num, overrides, "failed", f"its process could not start: {exc}")
        with self.lock:
            self.running[num] = process
            late = self.signalled  # a signal that came while it started
        send.close()
        watched.close()
        if late is not None:
            os.kill(process.pid, late)
        try:
            message = cloudpickle.loads(receive.recv_bytes())
        except EOFError:  # the process ended without a word: killed
            message = None
        finally:
            receive.close()
            process.join()
            sweep_alive.close()
            with self.lock:
                self.running.pop(num, None)
        if message is None:
            return self._lost(num, overrides, process)
        kind, value = message
        if kind == "exited":  # RunInterrupted (128 + N) or another SystemExit of the job: the sweep stops
            with self.lock:
                self.exit_code = self.exit_code if self.exit_code is not None else value
            return None
        return value

    def _lost(self, num: int, overrides: list[str], process: Any) -> JobReturn:
        why = process_death(process.exitcode, process.pid)
        if self.signalled is not None and process.exitcode == -self.signalled:
            # stopped by the sweep's signal before its run could take it (still importing)
            log.warning("Job %d stopped by %s before it started training", num, signal.Signals(self.signalled).name)
            return lost_job(self.sweep_dir, num, overrides, "interrupted", why)
        log.error("Job %d returned no result: %s", num, why)
        return lost_job(self.sweep_dir, num, overrides, "failed", why)

    def forward(self, signum: int, _frame: Any) -> None:
        with self.lock:
            self.signalled = signum
            if self.exit_code is None:
                self.exit_code = 128 + signum
            running = list(self.running.values())
        for process in running:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass


class _Forwarding:
    """The sweep's handlers of FORWARDED while its jobs run (only the main thread can set them)."""

    def __init__(self, jobs: _Jobs):
        self.jobs, self.previous = jobs, {}

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self.jobs.forward) for signum in FORWARDED}

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _fork_server(preload: list[str]):
    """multiprocessing's fork server, importing ``preload`` once: each job is forked from it with
    those imports done (a fresh interpreter would import torch and Lightning again per job, and
    forking the sweep's process itself would copy its threads)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *preload])  # no effect once the server runs
    return context


def _job_process(payload: bytes, send: Any, sweep_alive: Any) -> None:
    """The job's process: run the job as Hydra's launchers do and send back its JobReturn, or
    ("exited", code) when it ends the process (a signal's RunInterrupted is a SystemExit)."""
    import cloudpickle
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job
    from omegaconf import open_dict

    os.setpgrp()  # a terminal's Ctrl-C reaches the sweep, which forwards it once
    threading.Thread(target=_stop_with_sweep, args=(sweep_alive,), name="sweep alive", daemon=True).start()
    num, overrides, hydra_context, config, task_function, singleton_state = cloudpickle.loads(payload)
    try:
        setup_globals()
        Singleton.set_state(singleton_state)
        sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{num}"
            sweep_config.hydra.job.num = num
        HydraConfig.instance().set_config(sweep_config)
        message: tuple[str, Any] = ("returned", run_job(hydra_context=hydra_context, task_function=task_function,
                                                        config=sweep_config, job_dir_key="hydra.sweep.dir",
                                                        job_subdir_key="hydra.sweep.subdir"))
    except SystemExit as stop:
        message = ("exited", stop.code if isinstance(stop.code, int) else 1)
    except KeyboardInterrupt:
        message = ("exited", 128 + signal.SIGINT)
    try:
        data = cloudpickle.dumps(message)
    except Exception:  # noqa: BLE001 - an error object that does not pickle: its text still tells
        ret = message[1]
        try:
            ret.return_value  # a FAILED job's raises its error
        except Exception as error:  # noqa: BLE001
            ret.return_value = RuntimeError(f"{type(error).__name__}: {error}")  # its status stays FAILED
        data = cloudpickle.dumps(message)
    send.send_bytes(data)
    send.close()
    sys.stdout.flush()
    sys.stderr.flush()


def _stop_with_sweep(sweep_alive: Any) -> None:
    """SIGTERM to this job when the sweep's process ends without closing its end of the pipe
    (killed): the job stops at a checkpoint instead of running on unseen."""
    try:
        sweep_alive.recv_bytes()  # the sweep never sends: this returns at its death
    except (EOFError, OSError):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
