"""The Optuna search of conf/hparams_search (``hydra/sweeper=optuna_study``): a Hydra sweeper on
Optuna's ask-and-tell API, so that trials can be pruned, each slot starts its next trial as soon as
its job ends, and several invocations of one study can run at once (two terminals, a SLURM array
of searches) and any of them can die.

- The search space is ``params`` and the command line's sweeps, in Hydra's override grammar
  (experiments/sweeps/search_space.py); the sampler, ``direction``, ``n_trials`` and the other
  keys are those of Hydra's Optuna sweeper plugin (conf/hydra/sweeper/optuna_study.yaml).
- Each job is told its trial: the overrides ``trial.storage``, ``trial.study`` and
  ``trial.number`` (conf/run.yaml), with which it reports ``monitor.metric`` to the study after
  each validated epoch and asks the study's pruner (``pruner:``, recorded on the trial) whether
  to stop (experiments/runs/trial.py). A pruned job's record says ``pruned``; the sweeper tells
  the study PRUNED, with the last value the job reported.
- ``n_jobs`` trials run at once: a trial is asked when a slot frees, not per batch
  (experiments/sweeps/job_stream.py), with the parallel, local and slurm launchers; Hydra's basic
  launcher runs one at a time.
- The storage (experiments/runs/study_storage.py) is SQLite, a journal file or a database server.
  An SQLite study is created or opened under a file lock beside it: two invocations that start a
  new study at once both open it (SQLite alone lets the second fail creating its tables).
- With a database, each invocation records a heartbeat for its running trials every
  ``heartbeat_interval`` s (Optuna's heartbeat, in a thread of the sweep). Opening the study fails
  the trials whose invocation died, ``grace_period`` s after their last heartbeat (Optuna's
  ``fail_stale_trials``), and their job's row says so. A journal file has no heartbeats. Trials
  are numbered by the storage, so none is lost or repeated. A trial whose job was interrupted (a
  signal) is left running: ``resume=`` of its job rejoins it.
- Each trial records its job folder (user attribute ``job_dir``); the summary lists every trial of
  the study, and an invocation's exit code counts only its own jobs (experiments/sweeps/report.py).

The sweeper is declared in hydra_plugins/lightning_hydra_lab/optuna_sweeper.py, which imports this
module (and Optuna) only when a search runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import optuna
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf

from experiments.config import overrides as overrides_text
from experiments.config.errors import ConfigError, fail
from experiments.runs.files import held
from experiments.runs.naming import sweep_job_dir
from experiments.runs.record import JobRecord, UnreadableRecord
from experiments.runs.study_storage import SQLITE, absolute, has_heartbeats, open_storage, storage_file
from experiments.runs.trial import HEARTBEAT_ATTR, PRUNER_ATTR, Heartbeats, pruner_name
from experiments.sweeps.job_stream import job_stream
from experiments.sweeps.optuna_internals import trial_id
from experiments.sweeps.search_space import grid_choices, search_space

log = logging.getLogger(__name__)
JOB_DIR_ATTR = "job_dir"  # a trial's user attribute: its job's folder
WAIT_S = 1.0  # how often the loop looks up from waiting for a job (a signal's stop, a pending job's report)


class StudySweeper:
    """The sweeper: conf/hydra/sweeper/optuna_study.yaml's keys, Hydra's Sweeper's calls."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, params: Any = None, heartbeat_interval: int = 10,
                 grace_period: int = 60, pruner: Any = None):
        self.sampler, self.direction, self.storage, self.study_name = sampler, direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate, self.params = n_trials, n_jobs, max_failure_rate, params
        self.heartbeat_interval, self.grace_period = int(heartbeat_interval), int(grace_period)
        self.pruner = pruner
        self.job_idx = 0

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.job_idx = config, 0
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        directions = [str(d) for d in self.direction] if isinstance(self.direction, Sequence) and \
            not isinstance(self.direction, str) else [str(self.direction)]
        self.storage = absolute(self.storage)
        try:  # a search space or storage that cannot be: one paragraph, before any job
            space, fixed = self._search_space(arguments)
            study, storage = open_study(self.storage, self.study_name, self.sampler, directions,
                                        self.heartbeat_interval, self.grace_period, self.pruner)
        except ConfigError as error:
            fail(error)
        pruner = self._pruner_config(storage, directions)
        log.info("Study %s in %s: %d trials so far; %d more, %d at once; pruner: %s", study.study_name,
                 self.storage or "memory", len(study.trials), self.n_trials, self.n_jobs,
                 pruner_name(self.pruner) if pruner else "none")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        running: dict[Any, Any] = {}  # a job's future -> its trial
        asked = ended = failed = 0
        stopping = False
        with Heartbeats(storage, self.heartbeat_interval) as heartbeats, job_stream(self.launcher, self.n_jobs) as jobs:
            while True:
                stopping = stopping or jobs.stop_code is not None
                while asked < self.n_trials and len(running) < jobs.slots and not stopping:
                    trial, overrides = self._ask(study, space, fixed, sweep_dir, pruner)
                    heartbeats.add({trial.number: trial_id(trial)})
                    running[jobs.start(self.job_idx, overrides)] = trial
                    self.job_idx += 1
                    asked += 1
                if not running:
                    break
                for done in jobs.wait(set(running), timeout=WAIT_S):
                    trial = running.pop(done)
                    outcome = self._tell(study, storage, trial, done.result())
                    heartbeats.remove([trial.number])
                    ended += outcome != "interrupted"
                    failed += outcome == "failed"
                    if not stopping and ended and failed / ended > self.max_failure_rate:
                        log.error("%d of the %d trials ended so far failed: more than max_failure_rate=%s; no more "
                                  "trials start", failed, ended, self.max_failure_rate)
                        stopping = True
        self._save_results(study, directions)

    def _pruner_config(self, storage: Any, directions: list[str]) -> dict[str, Any] | None:
        """The pruner's config, which each trial records for its job (None: no pruning)."""
        node = OmegaConf.select(self.config, "hydra.sweeper.pruner", default=None)
        if self.pruner is None or node is None:
            return None
        if storage is None:
            log.warning("hydra.sweeper.pruner is set but hydra.sweeper.storage is no storage that the jobs can "
                        "open (null: the study is in this process's memory), so no trial is pruned")
            return None
        if len(directions) > 1:
            log.warning("Optuna prunes single-objective studies only: no trial of this %d-objective study is "
                        "pruned", len(directions))
            return None
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else None

    def _search_space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Optuna distributions and fixed values from ``params`` and the command line. A grid sampler
        (``_partial_``: it is given the grid here) runs at most the grid's size of trials."""
        space, fixed = search_space(self.params, arguments)
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            grid = {name: grid_choices(d) for name, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        return space, fixed

    def _ask(self, study: Any, space: dict[str, Any], fixed: dict[str, Any], sweep_dir: Path,
             pruner: dict[str, Any] | None) -> tuple[Any, list[str]]:
        """A new trial with its values drawn, and the overrides of its job: those values and,
        with a storage the job can open, the trial it is. The trial records the job's folder."""
        with warnings.catch_warnings():  # the heartbeats that study.optimize would record, Heartbeats records
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            trial = study.ask(space)
        for name, value in fixed.items():  # as the plugin recorded them
            trial.set_user_attr(name, value)
        job = [f"{name}={value}" for name, value in {**trial.params, **fixed}.items()]
        trial.set_user_attr(JOB_DIR_ATTR, str(sweep_job_dir(sweep_dir, self.job_idx, job)))
        if isinstance(self.storage, str):
            trial.set_user_attr(PRUNER_ATTR, pruner)
            trial.set_user_attr(HEARTBEAT_ATTR, self.heartbeat_interval)
            job += [overrides_text.assign("trial.storage", self.storage),
                    overrides_text.assign("trial.study", study.study_name), f"trial.number={trial.number}"]
        return trial, job

    def _tell(self, study: Any, storage: Any, trial: Any, ret: Any) -> str:
        """Tell the study a job's outcome, and return it: ``complete`` with its value, ``pruned``
        (the job's record says so), ``failed`` (a failed or lost job returns no value), or
        ``interrupted`` (a signal stopped the job: its trial stays running, for its resume)."""
        record = _job_record(trial)
        if ret is None or (record is not None and record.status == "interrupted"):
            log.warning("Trial %d was interrupted: it stays running in the study until its job is resumed "
                        "(resume=%s) or the study fails it", trial.number, trial.user_attrs.get(JOB_DIR_ATTR))
            return "interrupted"
        try:
            value = ret.return_value  # a job that raised past Hydra raises here
            values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            ok = all(math.isfinite(v) for v in values)
        except Exception:  # noqa: BLE001 - the job's own row says what failed
            values, ok = None, False
        pruned = record is not None and record.status == "pruned"
        outcome = "pruned" if pruned else "complete" if ok else "failed"
        try:
            if outcome == "complete":
                study.tell(trial, values=values if len(values) > 1 else values[0])
            elif outcome == "pruned":  # with the last value the job reported, from the storage
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                when = record.pruned or {}
                log.info("Trial %d pruned by %s after epoch %s (%s=%.6g): %s", trial.number, when.get("pruner"),
                         int(when.get("epoch", -1)) + 1, record.monitor, when.get("value", math.nan),
                         trial.user_attrs.get(JOB_DIR_ATTR))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        except Exception as exc:  # noqa: BLE001 - e.g. failed meanwhile as stale by another invocation
            if study.trials[trial.number].state.is_finished():
                # Told, then a sampler's after_trial raised: GridSampler's study.stop() at the grid's end
                # (outside study.optimize)
                return outcome
            log.warning("Could not record trial %d in the study: %s", trial.number, exc)
            return "failed"
        return outcome

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
               heartbeat_interval: int, grace_period: int, pruner: Any = None) -> tuple[Any, Any]:
    """The study (created if new) and its storage; with a database, heartbeats are on and its
    trials whose invocation stopped sending them are failed. An SQLite file is opened under a
    lock beside it (a database server creates its tables once by itself, a journal file takes
    each change under its own lock)."""
    if not isinstance(storage, str):  # in memory, or a storage object of the user's: as Hydra's sweeper
        return optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, directions=directions,
                                   pruner=pruner, load_if_exists=True), None
    file = storage_file(storage)
    if file is not None:  # neither SQLite nor the journal creates folders
        file.parent.mkdir(parents=True, exist_ok=True)
    sqlite = storage.startswith(SQLITE) and file is not None
    with held(file.with_name(f"{file.name}.lock")) if sqlite else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: since 2.9, and what it is for
        opened = open_storage(storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                              heartbeat_stale_trial_callback=functools.partial(_record_dead_trial,
                                                                               grace_period=grace_period))
        study = optuna.create_study(study_name=study_name, storage=opened, sampler=sampler, directions=directions,
                                    pruner=pruner, load_if_exists=True)
        if has_heartbeats(opened):
            optuna.storages.fail_stale_trials(study)
    return study, opened


def _job_record(trial: Any) -> JobRecord | None:
    """The record of a trial's job (None if it has none, or none that can be read)."""
    job_dir = trial.user_attrs.get(JOB_DIR_ATTR)
    try:
        return JobRecord.read(Path(job_dir)) if job_dir else None
    except UnreadableRecord:
        return None


def _record_dead_trial(study: Any, trial: Any, grace_period: int) -> None:
    """A trial that Optuna failed because its invocation stopped sending heartbeats: its job's
    row says so, unless the job recorded its own end."""
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
