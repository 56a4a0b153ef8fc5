"""Optuna pruning inside a Hydra multirun (issue 19): a run that is a trial reports to it and stops
when the study's pruner says so (in-process, against a real SQLite study); searches through the
real CLI, pruned and not, with the basic and parallel launchers (a pruned trial's slot refilled
while the other runs), a NaN trial, an interrupted trial resumed into its own trial, and two
invocations of one study at once; the same with a study in a journal file (Optuna's journal
storage) instead of SQLite. The SLURM search: tests/test_slurm.py."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from experiments.runs.study_storage import JOURNAL, SQLITE, open_storage
from tests.conftest import compose_run
from tests.test_sweep_faults import finish, record, start, wait_until
from tests.test_sweeps import QUIET, ROOT, cli, job_dirs, read_summary, tb_hparams

PRUNED, COMPLETE, FAIL, RUNNING = (optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE,
                                   optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
MEDIAN = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 2}


def url(path: Path) -> str:
    """The storage of a study file: a journal (``.log``) or SQLite."""
    return f"{JOURNAL if path.suffix == '.log' else SQLITE}{path}"


def new_study(path: Path, name: str = "s", direction: str = "minimize") -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(url(path)), direction=direction)


def load(study_dir: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")


def fresh(path: Path, name: str = "s") -> optuna.Study:
    """The study as its storage has it now (a study object keeps the trials it asked as it left them)."""
    return optuna.load_study(study_name=name, storage=open_storage(url(path)))


def running_trial(study: optuna.Study, pruner: dict | None) -> optuna.trial.Trial:
    """A trial asked as the sweeper asks it, with the pruner its job is to use."""
    trial = study.ask()
    trial.set_user_attr("pruner", pruner)
    trial.set_user_attr("heartbeat_interval", 1)
    return trial


def complete_trial(study: optuna.Study, curve: list[float]) -> None:
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
    study.tell(trial, curve[-1])


def fit_in_folder(tmp_path: Path, study_path: Path, number: int, *overrides: str):
    """experiments/run.py's body, in this process: a single run (no sweep), trial ``number``."""
    from experiments import pipeline
    from experiments.runs.folder import RunFolder

    out = tmp_path / "run"
    cfg = compose_run(["experiment=xor", "data.train_size=500", "logger=csv", "trainer.check_val_every_n_epoch=1",
                       f"trial.storage={url(study_path)}", "trial.study=s", f"trial.number={number}", *overrides],
                      out)
    with RunFolder(cfg) as folder:
        metrics = pipeline.fit_and_test(cfg, folder)
        folder.finish(metrics, pipeline.monitored_value(cfg, metrics))
    return out, json.loads((out / "job.json").read_text())


def reports(study_dir: Path, name: str) -> int:
    """How many values the study's first trial has had reported (0 before the study exists)."""
    if not list(study_dir.glob("*/*/job.json")):  # the sweep has made the study (opening it as it is made can fail)
        return 0
    try:
        return len(load(study_dir, name).trials[0].intermediate_values)
    except (KeyError, IndexError):  # the study or its first trial is not there yet
        return 0


def val_losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as f:
        return {int(r["epoch"]): float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")}


# ---------------------------------------------------------------- one run that is a trial

@pytest.mark.parametrize("file", ["study.db", "study.log"])  # SQLite, a journal file
def test_a_trial_run_reports_each_epoch_and_stops_when_pruned_keeping_its_checkpoints(tmp_path, file):
    study = new_study(tmp_path / file)
    complete_trial(study, [0.0] * 10)  # a trial so good that any other is worse than the median
    trial = running_trial(study, MEDIAN)  # pruned from its third epoch on (n_warmup_steps=2)

    run_dir, job = fit_in_folder(tmp_path, tmp_path / file, trial.number, "trainer.max_epochs=8")

    frozen = fresh(tmp_path / file).trials[trial.number]
    logged = val_losses(run_dir)
    assert sorted(frozen.intermediate_values) == [0, 1, 2], "one report per epoch, the epoch's index as step"
    assert frozen.intermediate_values == pytest.approx({e: logged[e] for e in (0, 1, 2)}), \
        "each report is that epoch's validation (never the sanity check's)"
    assert job["status"] == "pruned" and job["objective"] is None
    assert job["pruned"] == {"trial": trial.number, "epoch": 2, "value": pytest.approx(logged[2]),
                             "pruner": "MedianPruner"}
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and job["checkpoints"], "checkpoints kept"
    assert not any(k.startswith("test/") for k in job["metrics"]), "a pruned trial is not tested"
    assert max(logged) == 2, "the fit stopped after the pruned epoch"
    # No sweep ran it: the run told the study itself, which keeps its last reported value.
    assert frozen.state == PRUNED and frozen.value == pytest.approx(logged[2])


@pytest.mark.parametrize("epochs", [1, 3])
def test_the_pruner_is_not_asked_after_the_last_epoch(tmp_path, epochs):
    study = new_study(tmp_path / "study.db")
    complete_trial(study, [0.0] * 10)
    eager = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 0}
    trial = running_trial(study, eager)  # worse than the median at every epoch

    run_dir, job = fit_in_folder(tmp_path, tmp_path / "study.db", trial.number, f"trainer.max_epochs={epochs}")

    frozen = fresh(tmp_path / "study.db").trials[trial.number]
    assert sorted(frozen.intermediate_values) == [0], "epoch 0 reported, and the fit ended there"
    if epochs == 1:  # the last epoch: its value reported, the trial not pruned
        assert job["status"] == "ok" and frozen.state != PRUNED and max(val_losses(run_dir)) == 0
    else:  # an epoch before the last: pruned there
        assert job["status"] == "pruned" and job["pruned"]["epoch"] == 0 and frozen.state == PRUNED


def test_a_trial_that_ended_in_the_study_trains_on_without_pruning(tmp_path, caplog):
    study = new_study(tmp_path / "study.db")
    complete_trial(study, [0.0] * 10)
    trial = running_trial(study, MEDIAN)
    study.tell(trial, state=FAIL)  # as another invocation fails a trial with no heartbeat

    run_dir, job = fit_in_folder(tmp_path, tmp_path / "study.db", trial.number, "trainer.max_epochs=4")

    assert job["status"] == "ok" and max(val_losses(run_dir)) == 3, "trained to the end"
    frozen = fresh(tmp_path / "study.db").trials[trial.number]
    assert frozen.state == FAIL and not frozen.intermediate_values
    assert f"Trial {trial.number} of study s has ended in the study (FAIL)" in caplog.text


def test_a_trial_that_is_not_in_its_study_is_one_paragraph(tmp_path):
    from experiments.config.errors import ConfigError

    new_study(tmp_path / "study.db")
    with pytest.raises(ConfigError, match=r"trial.number=3: the study has no trial 3"):
        fit_in_folder(tmp_path, tmp_path / "study.db", 3)
    with pytest.raises(ConfigError, match=r"there is no study file .*other.db"):
        fit_in_folder(tmp_path, tmp_path / "other.db", 0)
    with pytest.raises(ConfigError, match=r"there is no study file .*other.log"):
        fit_in_folder(tmp_path, tmp_path / "other.log", 0)


def test_a_pruner_read_from_the_study_builds_only_optuna_pruners(tmp_path):
    from experiments.config.errors import ConfigError
    from experiments.runs.trial import build_pruner

    assert type(build_pruner(MEDIAN, "trial 0")).__name__ == "MedianPruner"
    patient = {"_target_": "optuna.pruners.PatientPruner", "patience": 2, "wrapped_pruner": MEDIAN}
    assert type(build_pruner(patient, "trial 0")).__name__ == "PatientPruner"
    with pytest.raises(ConfigError, match=r"trial 0 names _target_=os.system, which this project does not build"):
        build_pruner({"_target_": "os.system", "command": "touch hacked"}, "trial 0")
    assert build_pruner(None, "trial 0") is None


@pytest.mark.parametrize("option", ["median", "percentile", "successive_halving", "hyperband"])
def test_every_pruner_option_builds(option, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tests.conftest import CONF

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("run", overrides=["hparams_search=xor", f"hydra/sweeper/pruner={option}"], return_hydra_config=True)
    pruner = instantiate(OmegaConf.to_container(cfg.hydra.sweeper.pruner, resolve=True))
    assert isinstance(pruner, optuna.pruners.BasePruner)


def test_the_summary_ranks_pruned_trials_after_complete_ones_and_they_are_no_failure(tmp_path, capsys):
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from experiments.runs.record import JobRecord
    from experiments.sweeps.report import SweepReport

    def write(job, status, objective=None, epoch=None, value=None):
        pruned = {"trial": job, "epoch": epoch, "value": value, "pruner": "MedianPruner"} if epoch is not None else None
        JobRecord(job=job, overrides=[f"seed={job}"], status=status, monitor="val/loss", mode="min",
                  objective=objective, started=float(job), pruned=pruned,
                  metrics={"val/loss": objective or value or 0.0}).write(tmp_path / str(job))

    write(0, "pruned", epoch=1, value=0.9)
    write(1, "ok", objective=0.5)
    write(2, "pruned", epoch=3, value=0.8)
    write(3, "pruned", epoch=1, value=0.7)
    write(4, "ok", objective=0.2)
    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(tmp_path)}}})
    SweepReport().on_multirun_end(config=config)  # exits 1 only if a job failed: none did

    rows = read_summary(tmp_path)
    assert [(r["dir"], r["status"], r["pruned_after_epoch"]) for r in rows] == [
        ("4", "ok", ""), ("1", "ok", ""), ("2", "pruned", "4"), ("3", "pruned", "2"), ("0", "pruned", "2")]
    md = (tmp_path / "summary.md").read_text()
    assert "then the 3 pruned trials (the furthest first)" in md
    assert "| 3 | 2 | pruned after epoch 4 (MedianPruner) | seed=2 |" in md
    assert "(5 jobs, 0 failed, 3 pruned)" in capsys.readouterr().out


# ---------------------------------------------------------------- searches through the CLI

SEARCH = ["-m", "hparams_search=xor", "trainer.max_epochs=6", "hydra.sweeper.n_trials=6",
          # every draw random (TPE's start-up), so both searches try the same settings in the same order
          "hydra.sweeper.sampler.n_startup_trials=6", "hydra.sweeper.pruner.n_startup_trials=2"]


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """The same seeded XOR search with the median pruner and without any."""
    logs = tmp_path_factory.mktemp("searches")
    pruned = cli(*SEARCH, "hydra.sweeper.study_name=pruned", logs=logs)
    unpruned = cli(*SEARCH, "hydra.sweeper.study_name=unpruned", "hydra.sweeper.pruner=null", logs=logs)
    return logs / "train" / "optuna", pruned.stdout + pruned.stderr, unpruned.stdout


@pytest.mark.slow
def test_a_pruned_search_stops_trials_that_the_same_search_without_pruning_completes(searches):
    root, output, _ = searches
    pruned, unpruned = load(root / "pruned", "pruned"), load(root / "unpruned", "unpruned")
    assert [t.params for t in pruned.trials] == [t.params for t in unpruned.trials], "same seeds, same draws"
    stopped = [t for t in pruned.trials if t.state == PRUNED]
    assert stopped and all(unpruned.trials[t.number].state == COMPLETE for t in stopped)
    assert all(t.state == COMPLETE for t in unpruned.trials) and not unpruned.trials[0].intermediate_values, \
        "without a pruner, jobs report nothing"
    for t in stopped:  # told PRUNED with the last value its job reported, before the full run's end
        assert t.value == t.intermediate_values[max(t.intermediate_values)]
        assert max(t.intermediate_values) < max(pruned.trials[0].intermediate_values)
        assert f"Trial {t.number} pruned by MedianPruner after epoch {max(t.intermediate_values) + 1}" in output
    complete = [t for t in pruned.trials if t.state == COMPLETE]
    assert all(sorted(t.intermediate_values) == [1, 3, 5] for t in complete), \
        "every second epoch is validated (hparams_search=xor), so reported; never the sanity check"
    assert pruned.best_value == unpruned.best_value and pruned.best_params == unpruned.best_params
    assert f"(6 jobs, 0 failed, {len(stopped)} pruned)" in output, "exit 0: a pruned trial is no failure"


@pytest.mark.slow
def test_pruned_trials_are_pruned_rows_with_their_checkpoints_and_are_marked_in_tensorboard(searches):
    root, _, _ = searches
    study = load(root / "pruned", "pruned")
    rows = {r["dir"]: r for r in read_summary(root / "pruned")}
    for trial in study.trials:
        job = Path(trial.user_attrs["job_dir"])
        row = rows[str(job.relative_to(root / "pruned"))]
        run = record(job)
        if trial.state == PRUNED:
            assert run["status"] == row["status"] == "pruned" and run["pruned"]["trial"] == trial.number
            assert int(row["pruned_after_epoch"]) == max(trial.intermediate_values) + 1 and row["objective"] == ""
            assert (job / "checkpoints" / "last.ckpt").is_file()
        else:
            assert run["status"] == row["status"] == "ok" and float(row["objective"]) == trial.value
        tb_run = next(p.parent for p in job.rglob("events.out.tfevents.*"))
        assert tb_hparams(tb_run)["pruned"] == (trial.state == PRUNED)
        assert tb_hparams(tb_run)["trial.number"] == trial.number and "trial.storage" not in tb_hparams(tb_run)


@pytest.mark.slow
def test_a_search_with_its_study_in_a_journal_file_prunes_as_with_sqlite(searches, tmp_path):
    """hydra.sweeper.storage=journal://FILE: the sweep and every job open the study in that file."""
    root, _, _ = searches
    journal = tmp_path / "shared" / "study.log"  # a folder that does not exist yet
    proc = cli(*SEARCH, "hydra.sweeper.study_name=pruned", f"hydra.sweeper.storage=journal://{journal}", logs=tmp_path)
    study = optuna.load_study(study_name="pruned", storage=open_storage(f"journal://{journal}"))
    with_sqlite = load(root / "pruned", "pruned")
    assert [(t.params, t.state, t.intermediate_values) for t in study.trials] == \
        [(t.params, t.state, t.intermediate_values) for t in with_sqlite.trials], "the same search, the same trials"
    stopped = [t for t in study.trials if t.state == PRUNED]
    assert stopped and all(t.value == t.intermediate_values[max(t.intermediate_values)] for t in stopped)
    study_dir = tmp_path / "train" / "optuna" / "pruned"
    rows = {r["dir"]: r for r in read_summary(study_dir)}
    for trial in study.trials:
        job = Path(trial.user_attrs["job_dir"])
        assert rows[str(job.relative_to(study_dir))]["status"] == {COMPLETE: "ok", PRUNED: "pruned"}[trial.state]
        assert f"trial.storage=journal://{journal}" in record(job)["overrides"]
    assert not list(study_dir.rglob("study.db")), "no SQLite file beside"
    assert f"(6 jobs, 0 failed, {len(stopped)} pruned)" in proc.stdout


@pytest.mark.slow
def test_a_pruned_trials_checkpoint_evaluates(searches):
    root, _, _ = searches
    (trial,) = [t for t in load(root / "pruned", "pruned").trials if t.state == PRUNED][:1]
    last = Path(trial.user_attrs["job_dir"]) / "checkpoints" / "last.ckpt"
    from experiments.config.overrides import assign

    proc = subprocess.run([sys.executable, "experiments/evaluate.py", assign("ckpt_path", str(last)), *QUIET,
                           f"paths.log_dir={root.parent.parent / 'evaluate'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "test/acc" in proc.stdout + proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_a_nan_trial_is_failed_not_pruned(tmp_path):
    study_db = tmp_path / "diverging.db"
    # Least squares with SGD at lr 3 diverges a few epochs in (tests/test_lifecycle.py), after reporting.
    proc = cli("-m", "hydra/sweeper=optuna_study", "hydra/sweeper/pruner=median", "hydra/sweeper/sampler=grid",
               f"hydra.sweeper.storage=sqlite:///{study_db}", "hydra.sweeper.study_name=diverging",
               "hydra.sweeper.max_failure_rate=1.0",  # the grid's order is not seeded
               "model=linear", "data=regression", "model.loss=mse", "model.optimizer._target_=torch.optim.SGD",
               "data.batch_size=8", "trainer.max_epochs=12", "model.optimizer.lr=choice(0.01,3.0)",
               logs=tmp_path, expect=1)
    trials = optuna.load_study(study_name="diverging", storage=f"sqlite:///{study_db}").trials
    states = {t.params["model.optimizer.lr"]: t.state for t in trials}
    assert states == {0.01: COMPLETE, 3.0: FAIL}, states
    (diverged,) = [t for t in trials if t.state == FAIL]
    assert diverged.intermediate_values and diverged.value is None, "it reported, then failed"
    assert "(2 jobs, 1 failed)" in proc.stdout and "train/loss is inf" in proc.stdout


@pytest.mark.slow
def test_two_trials_run_at_once_and_a_pruned_ones_slot_is_refilled_while_the_other_runs(tmp_path):
    # A slot is refilled when the sweeper asks Optuna for the next trial (its datetime_start), not
    # when that job's process has started and built its run, which can take longer than the other
    # trial has left: the job records' spans check the two-at-once limit, the asks the refill.
    search = ["-m", "hparams_search=xor", "trainer.max_epochs=60", "hydra.sweeper.study_name=slots",
              "hydra.sweeper.n_trials=10", "hydra.sweeper.pruner.n_startup_trials=2",
              "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
    cli(*search, logs=tmp_path)
    study = load(tmp_path / "train" / "optuna" / "slots", "slots")
    runs = {t.number: record(Path(t.user_attrs["job_dir"])) for t in study.trials}
    asked = {t.number: t.datetime_start.timestamp() for t in study.trials}
    spans = [(r["started"], r["ended"]) for r in runs.values()]
    for at in [s for s, _ in spans]:
        assert sum(s <= at < e for s, e in spans) <= 2, "never more than n_jobs trials at once"
    refilled = [(p, n, other) for p in runs if runs[p]["status"] == "pruned"
                for n in runs if asked[n] >= runs[p]["ended"]
                for other in runs if other not in (p, n) and runs[other]["started"] < runs[p]["ended"]
                and asked[n] < runs[other]["ended"]]
    assert refilled, f"no trial asked for in a pruned trial's slot while the other still ran: {spans}, {asked}"


@pytest.mark.slow
def test_an_interrupted_trial_stays_running_and_its_resume_rejoins_it(tmp_path):
    # Many short batches an epoch: the signal lands within an epoch, not in its last batch, whose stop
    # Lightning resumes after, without that epoch's validation (and so without its report).
    search = ["-m", "hparams_search=xor", "hydra.sweeper.study_name=again", "hydra.sweeper.n_trials=1",
              "trainer.max_epochs=1000", "trainer.check_val_every_n_epoch=1", "data.train_size=2000",
              "data.batch_size=16"]
    study_dir = tmp_path / "train" / "optuna" / "again"
    proc = start(*search, logs=tmp_path)
    wait_until(lambda: reports(study_dir, "again") >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    finish(proc, expect=128 + signal.SIGTERM)
    (job,) = [p.parents[1] for p in study_dir.glob("*/*/checkpoints/last.ckpt")]
    trial = load(study_dir, "again").trials[0]
    assert record(job)["status"] == "interrupted" and trial.state == RUNNING, "left for its resume"
    reported = dict(trial.intermediate_values)
    assert len(reported) >= 3

    from experiments.config.overrides import assign

    def resume(*more: str, expect: int) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "experiments/run.py", assign("resume", str(job)), *more, *QUIET],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == expect, done.stderr[-3000:]
        return done

    refused = resume("trial.number=7", "trainer.max_epochs=30", expect=2)
    assert "trial.number=7 would change what the checkpoint" in refused.stderr
    resume("trainer.max_epochs=30", expect=0)
    trial = load(study_dir, "again").trials[0]
    assert len(load(study_dir, "again").trials) == 1, "no new trial"
    assert trial.state == COMPLETE and trial.value == record(job)["objective"]
    assert sorted(trial.intermediate_values) == list(range(30)), "the resumed epochs reported to the same trial"
    assert {k: trial.intermediate_values[k] for k in reported} == reported


@pytest.mark.slow
def test_two_invocations_of_one_pruned_study_at_once_record_every_trial_once(tmp_path):
    # A trial is pruned unless it is about the best so far at each epoch (the 10th percentile), so
    # some are whatever the sampler draws; the median pruner spares all when the later draws are good.
    search = ["-m", "hparams_search=xor", "trainer.max_epochs=8", "hydra.sweeper.study_name=both",
              "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra/sweeper/pruner=percentile",
              "hydra.sweeper.pruner.percentile=10", "hydra.sweeper.pruner.n_startup_trials=1"]
    procs = [start(*search, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", logs=tmp_path),
             start(*search, "hydra/launcher=local", "hydra.launcher.cpus_per_task=1", logs=tmp_path)]
    outputs = [finish(p, expect=0) for p in procs]
    study_dir = tmp_path / "train" / "optuna" / "both"
    trials = load(study_dir, "both").trials
    assert sorted(t.number for t in trials) == list(range(8))
    assert {t.state for t in trials} <= {COMPLETE, PRUNED} and any(t.state == PRUNED for t in trials), \
        [t.state for t in trials]
    folders = [Path(t.user_attrs["job_dir"]) for t in trials]
    assert len(set(folders)) == 8
    for trial, folder in zip(trials, folders):
        assert record(folder)["status"] == {COMPLETE: "ok", PRUNED: "pruned"}[trial.state]
        assert record(folder)["overrides"][-1] == f"trial.number={trial.number}", "each job is its own trial"
    assert len(read_summary(study_dir)) == 8
    assert [len(job_dirs(p)) for p in sorted(p for p in study_dir.iterdir() if p.is_dir())] == [4, 4]
    assert not any("database is locked" in out + err for out, err in outputs)
