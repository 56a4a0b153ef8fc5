"""The Optuna search of conf/hparams_search (``hydra/sweeper=optuna_study``): Hydra's Optuna
sweeper with an ask-and-tell loop of ours, so that several invocations of one study can run at
once (two terminals, a SLURM array of searches) and any of them can die.

- The study is created or opened under a file lock beside its SQLite file: two invocations that
  start a new study at once both open it (SQLite alone lets the second fail creating its tables).
- Each invocation records a heartbeat for its running trials every ``heartbeat_interval`` s
  (Optuna's heartbeat, in a thread of the sweep). Opening the study fails the trials whose
  invocation died, ``grace_period`` s after their last heartbeat (Optuna's ``fail_stale_trials``),
  and their job's row says so. Trials are numbered by the storage, so none is lost or repeated.
- Each trial records its job folder (user attribute ``job_dir``); the summary lists every trial of
  the study, and an invocation's exit code counts only its own jobs (experiments/sweeps/report.py).

The loop is ``_ask`` / ``launch`` / ``_tell`` over batches of ``n_jobs`` trials. The plugin's
parsing of the search space, its sampler and its trial set-up are used as they are; the sweeper
is declared in hydra_plugins/lightning_hydra_lab/optuna_sweeper.py, which imports this module
(and Optuna) only when a search runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

import optuna
from omegaconf import OmegaConf

from experiments.runs.files import held
from experiments.runs.naming import sweep_job_dir
from experiments.sweeps.hydra_internals import optuna_sweeper_impl

OptunaSweeperImpl, create_params_from_overrides = optuna_sweeper_impl()

log = logging.getLogger(__name__)
JOB_DIR_ATTR = "job_dir"  # a trial's user attribute: its job's folder
SQLITE = "sqlite:///"


class StudySweeper(OptunaSweeperImpl):
    """The Hydra Optuna plugin's sweeper (its implementation class) with our loop."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, params: Any = None, search_space: Any = None,
                 custom_search_space: str | None = None, heartbeat_interval: int = 10, grace_period: int = 60):
        super().__init__(sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
                         search_space, custom_search_space, params)
        self.heartbeat_interval, self.grace_period = int(heartbeat_interval), int(grace_period)

    def sweep(self, arguments: list[str]) -> None:
        space, fixed = self._search_space(arguments)
        directions = self._get_directions()
        study, storage = open_study(self.storage, self.study_name, self.sampler, directions,
                                    self.heartbeat_interval, self.grace_period)
        log.info("Study %s in %s: %d trials so far; %d more, %d at once", study.study_name, self.storage or "memory",
                 len(study.trials), self.n_trials, self.n_jobs)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        to_go = self.n_trials
        with Heartbeats(storage) as heartbeats:
            while to_go > 0:
                trials = self._ask(study, min(to_go, self.n_jobs), space, fixed, sweep_dir)
                heartbeats.add(trials)
                returns = self.launcher.launch([overrides for _, overrides in trials], initial_job_idx=self.job_idx)
                self.job_idx += len(returns)
                failed = [trial.number for (trial, _), ret in zip(trials, returns) if not self._tell(study, trial, ret)]
                heartbeats.remove(trials)
                to_go -= len(trials)
                if len(failed) / len(trials) > self.max_failure_rate:
                    log.error("Trials %s failed: more than max_failure_rate=%s of the batch; the search stops",
                              failed, self.max_failure_rate)
                    break
        self._save_results(study, directions)

    def _search_space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Optuna distributions and fixed values from ``params`` and the command line (the plugin's parsing)."""
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides([*self._parse_sweeper_params_config(), *arguments])
        space = {**(self.search_space_distributions or {}), **space}
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        return {k: v for k, v in space.items() if k not in fixed}, fixed

    def _ask(self, study: Any, n: int, space: dict[str, Any], fixed: dict[str, Any],
             sweep_dir: Path) -> list[tuple[Any, list[str]]]:
        """n new trials with their values drawn, each with the overrides of its job, which it
        records with the job's folder."""
        trials = [study.ask() for _ in range(n)]
        overrides = [list(o) for o in self._configure_trials(trials, space, fixed)]
        for num, (trial, job) in enumerate(zip(trials, overrides), start=self.job_idx):
            trial.set_user_attr(JOB_DIR_ATTR, str(sweep_job_dir(sweep_dir, num, job)))
        return list(zip(trials, overrides))

    def _tell(self, study: Any, trial: Any, ret: Any) -> bool:
        """Tell the study a job's outcome: COMPLETE with its value, or FAIL (a failed or lost
        job returns no value). Whether it completed."""
        try:
            value = ret.return_value  # a job that raised past Hydra raises here
            values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            ok = all(math.isfinite(v) for v in values)
        except Exception:  # noqa: BLE001 - the job's own row says what failed
            values, ok = None, False
        try:
            if ok:
                study.tell(trial, values=values if len(values) > 1 else values[0])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except Exception as exc:  # noqa: BLE001 - e.g. failed meanwhile as stale by another invocation
            log.warning("Could not record trial %d in the study: %s", trial.number, exc)
            return False
        return ok

    def _save_results(self, study: Any, directions: list[str]) -> None:
        """optimization_results.yaml in the sweep folder, as the plugin writes it."""
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            log.warning("No trial of study %s has completed yet", study.study_name)
            return
        if len(directions) < 2:
            best = study.best_trial
            results: dict[str, Any] = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info("Best parameters: %s, value: %s", best.params, best.value)
        else:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                       for t in study.best_trials]}
        OmegaConf.save(OmegaConf.create(results), Path(str(self.config.hydra.sweep.dir)) / "optimization_results.yaml")


def open_study(storage: Any, study_name: str | None, sampler: Any, directions: Sequence[str],
               heartbeat_interval: int, grace_period: int) -> tuple[Any, Any]:
    """The study (created if new) and its database storage, with heartbeats on; its trials whose
    invocation stopped sending heartbeats are failed. An SQLite file is opened under a lock
    beside it (a database server creates its tables once by itself)."""
    if not isinstance(storage, str):  # in memory, or a storage object of the user's: as Hydra's sweeper
        return optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, directions=directions,
                                   load_if_exists=True), None
    sqlite = Path(storage[len(SQLITE):]) if storage.startswith(SQLITE) else None
    lock = held(sqlite.with_name(f"{sqlite.name}.lock")) if sqlite else contextlib.nullcontext()
    with lock:  # SQLite does not create folders; held() does
        rdb = optuna.storages.RDBStorage(
            storage, engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else None,  # wait for others' writes
            heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            failed_trial_callback=functools.partial(_record_dead_trial, grace_period=grace_period))
        study = optuna.create_study(study_name=study_name, storage=rdb, sampler=sampler, directions=directions,
                                    load_if_exists=True)
        with warnings.catch_warnings():  # experimental since Optuna 2.9, and what it is for
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    return study, rdb


def _record_dead_trial(study: Any, trial: Any, grace_period: int) -> None:
    """A trial that Optuna failed because its invocation stopped sending heartbeats: its job's
    row says so, unless the job recorded its own end."""
    from experiments.runs.record import JobRecord, UnreadableRecord
    from experiments.sweeps.lost_jobs import record_lost_job

    job_dir = Path(trial.user_attrs.get(JOB_DIR_ATTR, ""))
    log.warning("Trial %d of study %s was still running when its invocation stopped (no heartbeat): "
                "it is failed now", trial.number, study.study_name)
    if not job_dir.name or not job_dir.is_dir():
        return  # its job never started
    try:
        record = JobRecord.read(job_dir) or JobRecord()
    except UnreadableRecord:
        record = JobRecord()
    if record.status != "running":
        return
    num = int(job_dir.name.split("_", 1)[0]) if job_dir.name.split("_", 1)[0].isdigit() else -1
    record_lost_job(job_dir, num, record.overrides, "failed",
                    f"its sweep ({job_dir.parent.name}) stopped while it ran (killed?): trial {trial.number} had no "
                    f"heartbeat for over {grace_period} s, so the study failed it")


class Heartbeats:
    """A thread that records a heartbeat of this invocation's running trials in the storage
    every heartbeat_interval s (nothing without a storage that keeps heartbeats)."""

    def __init__(self, storage: Any):
        self.storage = storage if storage is not None and storage.is_heartbeat_enabled() else None
        self.running: dict[int, int] = {}  # trial number -> trial id
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="optuna heartbeats", daemon=True)

    def __enter__(self) -> Heartbeats:
        if self.storage is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def add(self, trials: list[tuple[Any, list[str]]]) -> None:
        from experiments.sweeps.optuna_internals import trial_id

        with self.lock:
            self.running.update({trial.number: trial_id(trial) for trial, _ in trials})
        self._record()  # a trial without any heartbeat is never taken for dead

    def remove(self, trials: list[tuple[Any, list[str]]]) -> None:
        with self.lock:
            for trial, _ in trials:
                self.running.pop(trial.number, None)

    def _beat(self) -> None:
        while not self.stop.wait(self.storage.get_heartbeat_interval()):
            self._record()

    def _record(self) -> None:
        if self.storage is None:
            return
        with self.lock:
            ids = list(self.running.values())
        for trial_id in ids:
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - a busy database: the next beat tries again
                log.warning("Could not record the heartbeat of a running trial: %s", exc)
