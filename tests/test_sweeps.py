"""Multiruns through the real CLI: grid sweeps and their report, failed jobs, Optuna search
(continued across invocations), and seeds that reproduce. The launchers of this machine (parallel,
local), lost jobs and concurrent searches: tests/test_sweep_faults.py."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.preloaded import run_python

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
# XOR that reaches 100% validation accuracy in 5 short epochs (~3 s on 2 cores).
FAST_XOR = ["experiment=xor", "data.train_size=1000", "data.batch_size=32", "model.net.num_hidden=8",
            "trainer.max_epochs=5", "trainer.check_val_every_n_epoch=5"]

def cli(*args: str, logs: Path, timeout: int = 300, expect: int = 0) -> subprocess.CompletedProcess:
    """Run experiments/run.py as a user would, with every log under `logs`."""
    env = {**os.environ, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    proc = run_python(["experiments/run.py", *args, *QUIET, f"paths.log_dir={logs}"], cwd=ROOT, env=env,
                      timeout=timeout)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def read_summary(folder: Path) -> list[dict[str, str]]:
    with open(folder / "summary.csv") as f:
        return list(csv.DictReader(f))


def job_dirs(sweep: Path) -> list[Path]:
    """A sweep's job folders (<num> or <num>_<swept values>), in job order."""
    jobs = [p for p in sweep.iterdir() if p.is_dir() and p.name.split("_", 1)[0].isdigit()]
    return sorted(jobs, key=lambda p: int(p.name.split("_", 1)[0]))


def job_dir(sweep: Path, num: int) -> Path:
    (found,) = [p for p in job_dirs(sweep) if p.name.split("_", 1)[0] == str(num)]
    return found


def tb_runs(root: Path) -> set[Path]:
    """The folders of TensorBoard runs with scalars under root (a sweep's own folder holds only
    its hparams experiment, experiments/runs/hparams.py)."""
    return {p.parent for p in root.rglob("events.out.tfevents.*") if not p.name.endswith(".sweep_hparams")}


def tb_scalars(run_dir: Path) -> dict[str, float]:
    """The last value of every scalar in a run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}


def tb_hparams(run_dir: Path) -> dict[str, object]:
    """The hparams TensorBoard shows for a run (its session start info)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


F1 = "+model.metrics.f1={_target_: torchmetrics.F1Score, _partial_: true}"  # a metric of the config's own


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 2 x 2 grid on XOR: learning rate x seed, with an F1 metric from the config."""
    logs = tmp_path_factory.mktemp("grid")
    sweep = logs / "sweep"
    proc = cli("-m", *FAST_XOR, F1, "model.optimizer.lr=1.0,3.0", "seed=1,2", f"hydra.sweep.dir={sweep}", logs=logs)
    return sweep, proc


@pytest.mark.slow
def test_grid_gives_one_folder_and_tensorboard_run_per_job(grid):
    sweep, _ = grid
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0_lr=1.0,seed=1", "1_lr=1.0,seed=2", "2_lr=3.0,seed=1", "3_lr=3.0,seed=2"], \
        "a job's folder names its swept values"
    assert tb_runs(sweep) == set(jobs), "each job, and only a job, is one TensorBoard run"
    swept = set()
    for job in jobs:
        assert list((job / "checkpoints").glob("epoch_*.ckpt")), f"{job} has no checkpoint"
        hparams = tb_hparams(job)
        swept.add((hparams["model.optimizer.lr"], hparams["seed"]))
        assert "test/acc" in tb_scalars(job)
    assert swept == {(1.0, 1), (1.0, 2), (3.0, 1), (3.0, 2)}, "the hparams view shows the swept values"


@pytest.mark.slow
def test_grid_summary_matches_each_jobs_own_logs(grid):
    sweep, proc = grid
    rows = read_summary(sweep)
    assert len(rows) == 4 and {r["dir"] for r in rows} == {j.name for j in job_dirs(sweep)}
    assert all(r["status"] == "ok" and r["monitor"] == "val/loss" for r in rows)
    objectives = [float(r["objective"]) for r in rows]
    assert objectives == sorted(objectives), "best (lowest val/loss) first"
    for row in rows:
        job = sweep / row["dir"]
        record = json.loads((job / "job.json").read_text())
        assert " ".join(record["overrides"]) == row["overrides"]
        assert float(row["wall_s"]) > 0
        logged = tb_scalars(job)
        for metric in ("val/loss", "val/acc", "test/loss", "test/acc", "val/f1", "test/f1"):
            assert float(row[metric]) == pytest.approx(logged[metric], rel=1e-6), (row["dir"], metric)
        assert float(row["val/acc"]) >= 0.99, "every job learned XOR"
    md = (sweep / "summary.md").read_text()
    assert md.count("| ok |") == 4 and "model.optimizer.lr=3.0 seed=2" in md
    header = next(line for line in md.splitlines() if line.startswith("| # |")).split(" | ")
    assert {"val/f1", "test/f1"} <= set(header), header
    best = sweep / rows[0]["dir"]
    assert f"Best job: {best}" in proc.stdout


@pytest.mark.slow
def test_grid_writes_an_hparams_experiment_with_the_swept_keys_first(grid):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    sweep, _ = grid
    acc = EventAccumulator(str(sweep))  # the sweep folder's own events, not its jobs'
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    infos = list(experiment.hparam_infos)
    swept = {i.name: [v.number_value for v in i.domain_discrete.values] for i in infos[:2]}
    assert swept == {"model.optimizer.lr": [1.0, 3.0], "seed": [1.0, 2.0]}, "the swept keys, with their values, first"
    assert all(i.differs for i in infos[:2]) and not any(i.differs for i in infos[2:]), \
        "TensorBoard sorts the keys that differ first"
    names = {i.name for i in infos}
    assert {"experiment", "model", "data", "data.train_size", "trainer.max_epochs"} <= names
    assert not [n for n in names if "_target_" in n or n.startswith(("paths", "tags"))], names
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[0] == "val/loss" and {"val/acc", "val/acc_best", "test/loss", "test/acc", "val/f1",
                                         "test/f1"} <= set(metrics), \
        "the monitored metric first, then every metric the jobs logged (the config's F1 too)"


@pytest.mark.slow
def test_same_seed_gives_same_metrics_as_a_single_run(grid, tmp_path):
    sweep, _ = grid
    row = next(r for r in read_summary(sweep) if {"model.optimizer.lr=3.0", "seed=2"} <= set(r["overrides"].split()))
    cli(*FAST_XOR, "model.optimizer.lr=3.0", "seed=2", f"hydra.run.dir={tmp_path / 'single'}", logs=tmp_path)
    single, in_sweep = tb_scalars(tmp_path / "single"), tb_scalars(sweep / row["dir"])
    for metric in ("train/loss", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert single[metric] == in_sweep[metric], metric


@pytest.mark.slow
def test_failed_job_is_a_row_and_the_sweep_goes_on_then_exits_1(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli("-m", *FAST_XOR, "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1",
               "data.batch_size=0,32", f"hydra.sweep.dir={sweep}", logs=tmp_path, expect=1)
    rows = read_summary(sweep)
    assert [(r["dir"], r["status"]) for r in rows] == [("1_batch_size=32", "ok"), ("0_batch_size=0", "failed")]
    ok, failed = rows
    assert float(ok["test/acc"]) > 0 and list((sweep / ok["dir"] / "checkpoints").glob("*.ckpt"))
    told = "ConfigError: data.batch_size=0 is not allowed: data.batch_size takes an integer >= 1"
    assert failed["error"].startswith(told), failed["error"]
    assert failed["objective"] == "" and failed["test/acc"] == ""
    assert f"failed: {told}" in (sweep / "summary.md").read_text()
    assert "1 failed" in proc.stdout and f"Failed job: {sweep / '0_batch_size=0'}" in proc.stdout


@pytest.mark.slow
def test_optuna_search_continues_its_study(tmp_path):
    import optuna

    search = ["-m", "hparams_search=xor", "trainer.max_epochs=2", "hydra.sweeper.study_name=cont"]
    cli(*search, "hydra.sweeper.n_trials=3", logs=tmp_path)
    study_dir = tmp_path / "train" / "optuna" / "cont"
    assert len(read_summary(study_dir)) == 3
    cli(*search, "hydra.sweeper.n_trials=2", logs=tmp_path)  # the same command, 2 more trials

    study = optuna.load_study(study_name="cont", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = study.trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {"model.optimizer.lr", "model.optimizer.weight_decay", "model.net.num_hidden",
            "data.batch_size"} == set(trials[0].params)
    assert trials[3].params != trials[0].params and trials[4].params != trials[1].params, \
        "a continued study must not repeat the first invocation's draws"
    invocations = sorted(p for p in study_dir.iterdir() if p.is_dir())
    assert len(invocations) == 2 and [len(job_dirs(p)) for p in invocations] == [3, 2]
    rows = read_summary(study_dir)  # over the whole study
    assert len(rows) == 5
    assert float(rows[0]["objective"]) == pytest.approx(study.best_value)
    assert sorted(float(r["objective"]) for r in rows) == pytest.approx(sorted(t.value for t in trials))


# experiments/run.py with Hydra's Optuna sweeper plugin (hydra-optuna-sweeper, which older set-ups
# installed) made unimportable, as in a fresh install; it says at exit whether any of it was loaded.
WITHOUT_OPTUNA_PLUGIN = (
    "import atexit, runpy, sys; sys.modules['hydra_plugins.hydra_optuna_sweeper'] = None; "
    "atexit.register(lambda: print('plugin modules:', [m for m, v in sys.modules.items() "
    "if m.startswith('hydra_plugins.hydra_optuna_sweeper') and v is not None])); "
    "sys.argv = ['experiments/run.py', *sys.argv[1:]]; runpy.run_path('experiments/run.py', run_name='__main__')")


@pytest.mark.slow
def test_the_optuna_search_needs_no_hydra_optuna_sweeper_plugin(tmp_path):
    import optuna

    env = {**os.environ, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-c", WITHOUT_OPTUNA_PLUGIN, "-m", "hparams_search=xor",
                           "trainer.max_epochs=2", "hydra.sweeper.study_name=own", "hydra.sweeper.n_trials=2",
                           *QUIET, f"paths.log_dir={tmp_path}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "plugin modules: []" in proc.stdout
    study_dir = tmp_path / "train" / "optuna" / "own"
    trials = optuna.load_study(study_name="own", storage=f"sqlite:///{study_dir / 'study.db'}").trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    hydra_config = Path(trials[0].user_attrs["job_dir"]) / ".hydra" / "hydra.yaml"
    assert "consider_prior" not in hydra_config.read_text(), "the plugin's TPE schema merged into our sampler config"


@pytest.mark.parametrize("args, message", [
    (["hparams_search=xor", "hydra.sweeper.storage=journal://"], "The study's storage journal:// names no file"),
    (["hydra/sweeper=optuna_study", "hydra/sweeper/sampler=grid", "model.optimizer.lr=interval(0.1, 1.0)"],
     "A grid search (hydra/sweeper/sampler=grid) takes choice() and range() only"),
])
def test_a_search_that_cannot_be_is_one_paragraph(tmp_path, args, message):
    proc = cli("-m", *args, logs=tmp_path, expect=1)
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not list(tmp_path.rglob("job.json")), "no job ran"


@pytest.mark.slow
def test_optuna_records_a_failed_trial_and_goes_on(tmp_path):
    import optuna

    # batch_size 0 fails each job's config check; the seeded sampler draws both values in 4 trials.
    cli("-m", "hparams_search=xor", "trainer.max_epochs=2", "hydra.sweeper.study_name=fail",
        "hydra.sweeper.n_trials=4", "data.batch_size=choice(0,64)", logs=tmp_path, expect=1)
    study_dir = tmp_path / "train" / "optuna" / "fail"
    study = optuna.load_study(study_name="fail", storage=f"sqlite:///{study_dir / 'study.db'}")
    states = {t.params["data.batch_size"]: t.state for t in study.trials}
    assert states == {0: optuna.trial.TrialState.FAIL, 64: optuna.trial.TrialState.COMPLETE}, \
        "the seeded sampler should draw both values; if optuna changed, pick another seed"
    assert len(study.trials) == 4
    rows = read_summary(study_dir)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 4 and failed and all("data.batch_size takes an integer >= 1" in r["error"] for r in failed)
    assert rows[0]["status"] == "ok"


def test_threads_per_job_share_the_cores(monkeypatch):
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from experiments.sweeps.threads import threads_per_job

    def multirun(**launcher):
        return OmegaConf.create({"mode": RunMode.MULTIRUN, "launcher": launcher})

    monkeypatch.delenv("TORCH_NUM_THREADS", raising=False)
    assert threads_per_job(multirun(n_jobs=4), cores=16) == 4
    assert threads_per_job(multirun(n_jobs=-1), cores=16) == 1  # joblib: one worker per core
    assert threads_per_job(multirun(n_jobs=-2), cores=16) == 1
    assert threads_per_job(multirun(n_jobs=3), cores=2) == 1
    assert threads_per_job(multirun(cpus_per_task=6), cores=16) == 6
    assert threads_per_job(multirun(), cores=16) is None
    monkeypatch.setenv("TORCH_NUM_THREADS", "3")
    assert threads_per_job(multirun(n_jobs=4), cores=16) == 3


def test_summary_ranks_by_the_monitored_mode_and_puts_failures_last(tmp_path):
    from experiments.runs.record import JobRecord
    from experiments.sweeps.summary import write_summary

    def record(job, status, objective, acc):
        return JobRecord(job=job, overrides=["model=xor", f"seed={job}"], status=status,
                         error=None if status == "ok" else "ValueError: boom", monitor="val/acc",
                         mode="max", objective=objective, wall_s=1.0, started=float(job),
                         metrics={} if acc is None else {"val/acc": acc, "test/acc": acc})

    for job, status, objective in [(0, "ok", 0.7), (1, "failed", None), (2, "ok", 0.9), (3, "ok", 0.8)]:
        record(job, status, objective, objective).write(tmp_path / str(job))
    rows = write_summary(tmp_path)
    assert [(r["dir"], r["status"]) for r in rows] == [("2", "ok"), ("3", "ok"), ("0", "ok"), ("1", "failed")]
    assert read_summary(tmp_path)[0]["val/acc"] == "0.9"
    md = (tmp_path / "summary.md").read_text()
    assert "Every job: `model=xor`" in md and "| 4 | 1 | failed: ValueError: boom | seed=1 |" in md


def test_a_job_that_raises_past_run_job_still_gets_a_record(tmp_path):
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from experiments.sweeps.report import SweepReport

    job_dir = tmp_path / "0"
    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "job": {"num": 0},
                                         "runtime": {"output_dir": str(job_dir)}, "sweep": {"dir": str(tmp_path)}}})
    ret = JobReturn(overrides=["seed=1"], status=JobStatus.FAILED)
    try:
        raise RuntimeError("could not start\nmore detail")
    except RuntimeError as exc:
        ret._return_value = exc
    report = SweepReport()
    report.on_job_start(config=config)
    report.on_job_end(config=config, job_return=ret)
    record = json.loads((job_dir / "job.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: could not start"
    assert read_summary(tmp_path)[0]["overrides"] == "seed=1"
