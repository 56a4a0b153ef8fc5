"""Sweeps that lose a job or a record, and searches run at once, through the real CLI: a job's
process killed (SIGKILL, as the OOM killer does) under each launcher of this machine, an
unreadable job.json, a summary that cannot be written, two invocations of one Optuna study at
once, and an invocation killed mid-trial."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.config.overrides import assign, command
from tests.test_sweeps import FAST_XOR, QUIET, ROOT, job_dir, job_dirs, read_summary

SEARCH = ["-m", "hparams_search=xor", "trainer.max_epochs=2"]


def start(*args: str, logs: Path) -> subprocess.Popen:
    """experiments/run.py in the background, as a user would start it, every log under `logs`."""
    env = {**os.environ, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    return subprocess.Popen([sys.executable, "experiments/run.py", *args, *QUIET, f"paths.log_dir={logs}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, expect: int) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    return out, err


def wait_until(found, proc: subprocess.Popen, timeout: float = 300):
    """found()'s first true value, polled while proc runs."""
    deadline = time.time() + timeout
    while not (value := found()):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)
    return value


def record(folder: Path) -> dict:
    try:
        return json.loads((folder / "job.json").read_text())
    except (OSError, ValueError):
        return {}


def running_job(sweep: Path, num: int):
    """Job num's record once it says running (its pid is the job's process)."""
    def found():
        jobs = [j for j in job_dirs(sweep) if j.name.split("_")[0] == str(num)] if sweep.is_dir() else []
        return jobs and record(jobs[0]).get("status") == "running" and record(jobs[0])
    return found


def rows_by_dir(folder: Path) -> dict[str, dict[str, str]]:
    return {r["dir"]: r for r in read_summary(folder)}


# ---------------------------------------------------------------- launchers: a job's process killed

@pytest.mark.slow
def test_parallel_runs_jobs_at_once_and_a_killed_job_is_one_failed_row(tmp_path):
    sweep = tmp_path / "sweep"
    # Jobs of several seconds, so that job 0 is surely running when it is killed and jobs 1 and
    # 2 (started in the slot job 0 left) overlap.
    proc = start("-m", *FAST_XOR, "trainer.max_epochs=150", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                 "seed=1,2,3", f"hydra.sweep.dir={sweep}", logs=tmp_path)
    victim = wait_until(running_job(sweep, 0), proc)
    os.kill(victim["pid"], signal.SIGKILL)
    out, _ = finish(proc, expect=1)

    rows = rows_by_dir(sweep)
    assert {d: r["status"] for d, r in rows.items()} == {"0_seed=1": "failed", "1_seed=2": "ok", "2_seed=3": "ok"}
    assert rows["0_seed=1"]["error"].startswith("killed by SIGKILL (signal 9): out of memory?")
    assert "(3 jobs, 1 failed)" in out and f"Failed job: {sweep / '0_seed=1'}  killed by SIGKILL" in out
    killed = record(sweep / "0_seed=1")
    assert killed["status"] == "failed" and killed["objective"] is None and killed["pid"] == victim["pid"]
    a, b = record(job_dir(sweep, 1)), record(job_dir(sweep, 2))
    assert len({victim["pid"], a["pid"], b["pid"], proc.pid}) == 4, "each job in a process of its own"
    assert a["started"] < b["ended"] and b["started"] < a["ended"], "two jobs ran at the same time"
    cores = len(os.sched_getaffinity(0))
    assert a["torch_threads"] == b["torch_threads"] == max(1, cores // 2), "2 jobs x threads <= cores"


@pytest.mark.slow
def test_parallel_sweep_stopped_by_sigterm_stops_its_running_jobs_at_a_checkpoint(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start("-m", *FAST_XOR, "trainer.max_epochs=400", "trainer.check_val_every_n_epoch=1",
                 "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=1,2,3", f"hydra.sweep.dir={sweep}",
                 logs=tmp_path)
    wait_until(lambda: len(list(sweep.glob("*/checkpoints/last.ckpt"))) == 2, proc)
    proc.send_signal(signal.SIGTERM)  # to the sweep's process only: it forwards it to its jobs
    _, err = finish(proc, expect=128 + signal.SIGTERM)
    assert [j.name for j in job_dirs(sweep)] == ["0_seed=1", "1_seed=2"], "no job starts after the signal"
    for job in job_dirs(sweep):
        assert record(job)["status"] == "interrupted" and (job / "checkpoints" / "last.ckpt").is_file()
        assert f"Resume with: {command('experiments/run.py', assign('resume', str(job)))}" in err


@pytest.mark.slow
def test_jobs_of_a_killed_parallel_sweep_stop_at_a_checkpoint(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start("-m", *FAST_XOR, "trainer.max_epochs=400", "trainer.check_val_every_n_epoch=1",
                 "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=1,2", f"hydra.sweep.dir={sweep}",
                 logs=tmp_path)
    wait_until(lambda: len(list(sweep.glob("*/checkpoints/last.ckpt"))) == 2, proc)
    pids = [record(job)["pid"] for job in job_dirs(sweep)]
    proc.kill()  # SIGKILL: the sweep cannot tell its jobs; they find out themselves
    proc.communicate()
    deadline = time.time() + 60
    while any(record(job)["status"] == "running" for job in job_dirs(sweep)) and time.time() < deadline:
        time.sleep(0.2)
    assert [record(job)["status"] for job in job_dirs(sweep)] == ["interrupted", "interrupted"]
    time.sleep(1)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()
                and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"], "no job runs on unseen"


def test_the_parallel_launcher_forwards_the_signals_a_run_stops_at():
    from experiments.sweeps.parallel import FORWARDED
    from lightning_modules.run_guard import STOP_SIGNALS

    assert set(FORWARDED) == set(STOP_SIGNALS)


@pytest.mark.slow
def test_local_runs_each_job_through_submitit_and_a_killed_job_is_a_failed_row(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start("-m", *FAST_XOR, "trainer.max_epochs=150", "hydra/launcher=local", "hydra.launcher.cpus_per_task=1",
                 "seed=1,2", f"hydra.sweep.dir={sweep}", logs=tmp_path)
    victim = wait_until(running_job(sweep, 0), proc)
    os.kill(victim["pid"], signal.SIGKILL)
    out, _ = finish(proc, expect=1)
    rows = rows_by_dir(sweep)
    assert {d: r["status"] for d, r in rows.items()} == {"0_seed=1": "failed", "1_seed=2": "ok"}
    assert "ended without a result: its process was killed" in rows["0_seed=1"]["error"]
    assert "(2 jobs, 1 failed)" in out
    other = record(sweep / "1_seed=2")
    assert other["pid"] not in (victim["pid"], proc.pid) and other["torch_threads"] == 1, \
        "threads = hydra.launcher.cpus_per_task"
    assert len(list((sweep / ".submitit").iterdir())) >= 2, "submitit keeps each job's files"


# ---------------------------------------------------------------- records and the summary

@pytest.mark.slow
def test_an_unreadable_job_record_is_a_row_and_the_sweep_exits_1(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start("-m", *FAST_XOR, "trainer.max_epochs=15", "seed=1,2", f"hydra.sweep.dir={sweep}", logs=tmp_path)
    wait_until(running_job(sweep, 1), proc)  # job 0 has ended and written its record
    first = sweep / "0_seed=1" / "job.json"
    first.write_text(first.read_text()[:40])  # truncated, as a full disk or a crash leaves it
    out, _ = finish(proc, expect=1)
    rows = rows_by_dir(sweep)
    assert rows["1_seed=2"]["status"] == "ok"
    assert rows["0_seed=1"]["status"] == "unreadable" and "job.json cannot be read" in rows["0_seed=1"]["error"]
    assert "(2 jobs, 1 failed)" in out and f"Unreadable job: {sweep / '0_seed=1'}" in out
    assert rows["1_seed=2"]["dir"] in (sweep / "summary.md").read_text()


def test_a_summary_that_cannot_be_written_is_one_paragraph_and_exit_1(tmp_path, capsys):
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from experiments.runs.record import JobRecord
    from experiments.sweeps.report import SweepReport

    JobRecord(job=0, overrides=["seed=1"], status="ok", objective=0.5, monitor="val/loss", mode="min").write(tmp_path / "0")
    (tmp_path / "summary.csv").mkdir()  # a folder where the summary goes: the rename fails
    (tmp_path / "summary.csv" / "x").write_text("")
    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit) as stop:
        SweepReport().on_multirun_end(config=config)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Could not write the sweep's summary in {tmp_path} (IsADirectoryError") and "\n" not in err.strip()
    assert "write_summary(" in err and (tmp_path / "0" / "job.json").is_file()


# ---------------------------------------------------------------- Optuna: invocations at once, and killed

def test_several_processes_opening_a_new_study_at_once_share_it(tmp_path):
    import multiprocessing

    import optuna

    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(3), context.Queue()
    storage = f"sqlite:///{tmp_path / 'new' / 'study.db'}"
    workers = [context.Process(target=_open_study_at_once, args=(storage, barrier, results)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in workers]
    assert outcomes == ["ok"] * 3, outcomes  # without the lock, SQLite: "table studies already exists"
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["at_once"]


def _open_study_at_once(storage: str, barrier, results) -> None:
    from experiments.sweeps.optuna_study import open_study

    barrier.wait()
    try:
        open_study(storage, "at_once", None, ["minimize"], heartbeat_interval=10, grace_period=60)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_two_searches_of_a_new_study_at_once_record_every_trial_once(tmp_path):
    import optuna

    search = [*SEARCH, "hydra.sweeper.study_name=both", "hydra.sweeper.n_trials=2"]
    procs = [start(*search, logs=tmp_path) for _ in range(2)]  # started together
    outs = [finish(p, expect=0)[0] for p in procs]  # neither counts the other's running trial
    study_dir = tmp_path / "train" / "optuna" / "both"
    trials = optuna.load_study(study_name="both", storage=f"sqlite:///{study_dir / 'study.db'}").trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    folders = [Path(t.user_attrs["job_dir"]) for t in trials]
    assert len(set(folders)) == 4 and all(record(f)["objective"] == t.value for f, t in zip(folders, trials))
    rows = rows_by_dir(study_dir)
    assert sorted(study_dir / d for d in rows) == sorted(folders), "the summary lists every trial once"
    invocations = [p for p in study_dir.iterdir() if p.is_dir()]
    assert len(invocations) == 2 and [len(job_dirs(p)) for p in invocations] == [2, 2]
    for out in outs:  # the other invocation's jobs are in the summary as far as they had started
        assert re.search(r"\(\d jobs in all; this invocation: 2 jobs, 0 failed\)|\(2 jobs, 0 failed\)", out), out


@pytest.mark.slow
def test_a_search_killed_mid_trial_has_that_trial_failed_when_the_study_is_next_opened(tmp_path):
    import optuna

    search = [*SEARCH, "hydra.sweeper.study_name=killed", "hydra.sweeper.n_trials=1",
              "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"]
    study_dir = tmp_path / "train" / "optuna" / "killed"
    proc = start(*search, "trainer.max_epochs=1000", logs=tmp_path)
    wait_until(lambda: list(study_dir.glob("*/*/checkpoints/last.ckpt")), proc)  # training, heartbeats sent
    proc.kill()
    proc.communicate()
    (killed_job,) = [p.parent.parent for p in study_dir.glob("*/*/checkpoints/last.ckpt")]
    assert record(killed_job)["status"] == "running"
    storage = f"sqlite:///{study_dir / 'study.db'}"
    assert optuna.load_study(study_name="killed", storage=storage).trials[0].state == optuna.trial.TrialState.RUNNING
    time.sleep(2 + 2)  # past the grace period (whole seconds, as the database's clock counts)

    out, _ = finish(start(*search, logs=tmp_path), expect=0)  # exits by its own trial only
    trials = optuna.load_study(study_name="killed", storage=storage).trials
    assert [(t.number, t.state) for t in trials] == [(0, optuna.trial.TrialState.FAIL),
                                                    (1, optuna.trial.TrialState.COMPLETE)]
    row = rows_by_dir(study_dir)[str(killed_job.relative_to(study_dir))]
    assert row["status"] == "failed" and "had no heartbeat for over 2 s" in row["error"]
    assert record(killed_job)["status"] == "failed"
    assert "(2 jobs in all; this invocation: 1 jobs, 0 failed)" in out


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # fail_stale_trials, as the sweeper
def test_a_heartbeat_recorded_by_trial_id_keeps_a_trial_alive_until_it_stops(tmp_path):
    """experiments/sweeps/optuna_internals.py's private read, and Optuna's heartbeat as the sweeper uses it."""
    import optuna

    from experiments.sweeps.optuna_internals import trial_id

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    beating, silent = study.ask(), study.ask()
    storage.record_heartbeat(trial_id(beating))
    assert storage.get_trial(trial_id(beating)).number == beating.number
    time.sleep(2.2)
    storage.record_heartbeat(trial_id(beating))
    optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.trials}
    assert states[beating.number] == optuna.trial.TrialState.RUNNING, "a trial with a fresh heartbeat lives"
    assert states[silent.number] == optuna.trial.TrialState.RUNNING, "a trial without any heartbeat is never failed"
    time.sleep(2.2)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[beating.number].state == optuna.trial.TrialState.FAIL
