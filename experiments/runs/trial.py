"""A run that is a trial of an Optuna study: its config's ``trial`` node (conf/run.yaml) names the
study's storage, the study and the trial's number, which an Optuna search gives each of its jobs
(experiments/sweeps/optuna_study.py). The run folder (experiments/runs/folder.py) then

- opens that trial in its storage (rank 0 only) and adds ``TrialPruning``
  (lightning_modules/callbacks/trial_pruning.py) to the trainer, with the pruner the search
  recorded on the trial (user attribute ``pruner``: a config of ``optuna.pruners`` classes only);
- is never a different trial: a requeued SLURM job and a ``resume=`` replay the same ``trial``
  node (a resume may not change it, experiments/runs/resume.py);
- when no sweep runs it (a ``resume=`` of an interrupted trial), keeps the trial's heartbeat while
  it trains and tells the study how it ended; in a sweep the sweeper tells.

A trial that has ended in the study meanwhile (failed by another invocation once its heartbeats
stopped) cannot be reported to: the run trains on without pruning and says so.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config.errors import ConfigError, first_line
from experiments.runs.study_storage import has_heartbeats, open_storage, storage_file

log = logging.getLogger(__name__)
# Alembic (Optuna's database storage) logs "setup plugin ..." seven times at INFO when Optuna is
# imported: in each job here, as experiments/sweeps/optuna_sampler.py does for the sweep.
logging.getLogger("alembic").setLevel(logging.WARNING)
PRUNER_ATTR = "pruner"  # a trial's user attribute: the config of its pruner (None: no pruning)
HEARTBEAT_ATTR = "heartbeat_interval"  # a trial's user attribute: the search's heartbeat interval, s

def build_pruner(spec: Any, where: str) -> Any:
    """The pruner a config names (``{_target_: optuna.pruners.MedianPruner, ...}``), or None. It is
    read from the study's storage, a file: only optuna.pruners classes are built."""
    if not spec:
        return None
    from hydra.utils import instantiate

    from experiments.config.trusted import check_targets

    check_targets(spec, where, trusted=["optuna.pruners"])
    return instantiate(spec)


def pruner_name(pruner: Any) -> str:
    return type(pruner).__name__ if pruner is not None else "no pruner"


class StudyTrial:
    """Trial ``number`` of ``study`` in ``storage``, as one run reports to it."""

    def __init__(self, storage: str, study: str, number: int):
        import optuna

        self.storage_url, self.study_name, self.number = storage, study, number
        where = f"trial.storage={storage} trial.study={study} trial.number={number}"
        file = storage_file(storage)
        if file is not None and not file.is_file():
            raise ConfigError(f"{where}: there is no study file {file}. A trial's run gets these "
                              "from its search; leave them unset outside one.")
        try:
            self.storage = open_storage(storage)
        except Exception as error:  # noqa: BLE001 - a storage that cannot be opened: which, and why
            raise ConfigError(f"{where}: the study's storage cannot be opened ({first_line(error)}).") from None
        try:
            study_id = self.storage.get_study_id_from_name(study)
        except KeyError:
            names = optuna.get_all_study_names(self.storage)
            raise ConfigError(f"{where}: the storage has no such study (it has: {', '.join(names) or 'none'}). "
                              "A trial's run gets these from its search; leave them unset outside one.") from None
        try:
            self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        except KeyError:
            raise ConfigError(f"{where}: the study has no trial {number}. A trial's run gets these from its search; "
                              "leave them unset outside one.") from None
        frozen = self.storage.get_trial(self.trial_id)
        self.running = frozen.state == optuna.trial.TrialState.RUNNING
        self.state = frozen.state.name
        self.pruner = build_pruner(frozen.user_attrs.get(PRUNER_ATTR), f"trial {number} of study {study} ({storage})")
        self.heartbeat_interval = int(frozen.user_attrs.get(HEARTBEAT_ATTR) or 10)
        self.trial: Any = None
        if self.running:
            loaded = optuna.load_study(study_name=study, storage=self.storage, sampler=optuna.samplers.RandomSampler(),
                                       pruner=self.pruner or optuna.pruners.NopPruner())
            self.trial = optuna.trial.Trial(loaded, self.trial_id)
        else:
            log.warning("Trial %d of study %s has ended in the study (%s): this run trains on without reporting to "
                        "it or being pruned, and its outcome is in its own folder only", number, study, self.state)
        self._heartbeats: Heartbeats | None = None

    def callback(self, monitor: str, rank_zero: bool) -> Any:
        """The callback that reports to the trial and stops a pruned fit (None without a pruner, or
        for a trial that has ended). Every rank of a DDP run gets one; rank 0 reports."""
        if not self.running or self.pruner is None:
            return None
        from lightning_modules.callbacks.trial_pruning import TrialPruning

        return TrialPruning(self.trial if rank_zero else None, monitor, pruner_name(self.pruner))

    def keep_alive(self) -> None:
        """Record the trial's heartbeat while this run trains (when no sweep does)."""
        if self.running:
            self._heartbeats = Heartbeats(self.storage, self.heartbeat_interval).__enter__()
            self._heartbeats.add({self.number: self.trial_id})

    def stop_heartbeats(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.__exit__(None, None, None)
            self._heartbeats = None

    def tell(self, status: str, objective: float | None) -> None:
        """Tell the study how the run ended (when no sweep does): ok COMPLETE, pruned PRUNED,
        failed FAIL; an interrupted run leaves its trial running, to be resumed."""
        import optuna

        self.stop_heartbeats()
        if not self.running or status == "interrupted":
            return
        states = {"ok": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}
        state = states.get(status, optuna.trial.TrialState.FAIL)
        if state == optuna.trial.TrialState.COMPLETE and (objective is None or not math.isfinite(objective)):
            state = optuna.trial.TrialState.FAIL
        try:
            self.trial.study.tell(self.number, objective if state == optuna.trial.TrialState.COMPLETE else None,
                                  state=state)
            log.info("Trial %d of study %s told %s", self.number, self.study_name, state.name)
        except Exception as error:  # noqa: BLE001 - e.g. failed meanwhile by another invocation
            log.warning("Could not tell trial %d of study %s that it ended (%s): %s", self.number, self.study_name,
                        state.name, first_line(error))


def trial_of(cfg: DictConfig) -> StudyTrial | None:
    """The trial a run's config names (None for a run outside an Optuna search)."""
    node = cfg.get("trial")
    if not isinstance(node, DictConfig) or node.get("number") is None:
        return None
    spec = OmegaConf.to_container(node, resolve=True)
    missing = [k for k in ("storage", "study") if not spec.get(k)]
    if missing:
        raise ConfigError(f"trial.number={spec['number']} needs {' and '.join(f'trial.{k}' for k in missing)} too: "
                          "a trial is found by its study's storage, name and number.")
    return StudyTrial(str(spec["storage"]), str(spec["study"]), int(spec["number"]))


class Heartbeats:
    """A thread that records a heartbeat of running trials in the storage every ``interval`` s
    (Optuna records heartbeats itself only inside ``study.optimize``, which a Hydra sweep cannot
    use). ``add({number: trial_id})`` records one at once: a trial without any heartbeat is never
    taken for dead. A storage without heartbeats (a journal file) gets none."""

    def __init__(self, storage: Any, interval: float):
        self.storage, self.interval = storage, interval
        self.running: dict[int, int] = {}  # trial number -> trial id
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="optuna heartbeats", daemon=True)

    def __enter__(self) -> Heartbeats:
        if has_heartbeats(self.storage):
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def add(self, trials: dict[int, int]) -> None:
        with self.lock:
            self.running.update(trials)
        self._record(list(trials.values()))

    def remove(self, numbers: list[int]) -> None:
        with self.lock:
            for number in numbers:
                self.running.pop(number, None)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                ids = list(self.running.values())
            self._record(ids)

    def _record(self, ids: list[int]) -> None:
        if not has_heartbeats(self.storage):
            return
        for trial_id in ids:
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - a busy database: the next beat tries again
                log.warning("Could not record the heartbeat of a running trial: %s", exc)
