"""`hydra/launcher=slurm` through a real SLURM cluster (tests/helpers/slurm_cluster.py, one node on
loopback): each Hydra job is one task of a job array submitted with sbatch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.test_sweeps import tb_runs

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
FAST_XOR = ["experiment=xor", "data.train_size=1000", "data.batch_size=32", "model.net.num_hidden=8",
            "trainer.max_epochs=5", "trainer.check_val_every_n_epoch=5"]
# What a one-node, 2-CPU, GPU-less cluster can give each job.
SMALL_JOB = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=null",
             "hydra.launcher.tasks_per_node=1", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
             "hydra.launcher.timeout_min=5", "trainer=cpu"]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def submit(cluster, *args: str, logs: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    """experiments/run.py -m through the cluster, as a user on its login node would run it."""
    env = {**cluster.env, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    return subprocess.run(
        [sys.executable, "experiments/run.py", "-m", *SMALL_JOB, *FAST_XOR, *QUIET, *args,
         f"paths.log_dir={logs}", f"hydra.sweep.dir={logs / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def sweep(slurm_cluster, tmp_path_factory):
    logs = tmp_path_factory.mktemp("slurm_sweep")
    proc = submit(slurm_cluster, "model.optimizer.lr=1.0,3.0", logs=logs)
    slurm_cluster.wait_idle()
    return logs / "sweep", proc


def test_sweep_runs_as_a_slurm_job_array(sweep, slurm_cluster):
    folder, proc = sweep
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "(2 jobs, 0 failed)" in proc.stdout
    # submitit's folder: the sbatch script of one job array (<id>/<id>_submission.sh) and a
    # folder of logs and results per array task (<id>_<task>)
    scripts = list((folder / ".submitit").glob("*/*_submission.sh"))
    assert len(scripts) == 1 and "#SBATCH --array=0-1" in scripts[0].read_text()
    array_id = scripts[0].parent.name
    tasks = sorted(p.name for p in (folder / ".submitit").iterdir() if p.is_dir())
    assert tasks == [array_id, f"{array_id}_0", f"{array_id}_1"]
    assert all(list((folder / ".submitit" / f"{array_id}_{i}").glob("*_result.pkl")) for i in (0, 1))
    # slurmctld ran them: both array tasks completed on the partition the sweep asked for
    done = [line for line in slurm_cluster.jobcomp.read_text().splitlines() if f"ArrayJobId={array_id} " in line]
    assert len(done) == 2 and all("JobState=COMPLETED" in d and "Partition=debug" in d for d in done), done


def test_each_slurm_job_leaves_record_checkpoints_and_tensorboard(sweep):
    folder, proc = sweep
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(folder / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["dir"] for r in rows) == ["0_lr=1.0", "1_lr=3.0"], "each job's folder names its swept value"
    assert all(r["status"] == "ok" for r in rows), rows
    assert sorted(r["overrides"].split("model.optimizer.lr=")[1].split()[0] for r in rows) == ["1.0", "3.0"]
    for job in ("0_lr=1.0", "1_lr=3.0"):
        assert (folder / job / "job.json").is_file()
        assert any((folder / job / "checkpoints").glob("*.ckpt")), f"no checkpoint in job {job}"
        assert list((folder / job).glob("events.out.tfevents.*")), f"no TensorBoard events in job {job}"


def test_sacct_stand_in_answers_like_sacct(slurm_cluster):
    """submitit polls `sacct -o JobID,State,NodeList --parsable2 -j ID`; the stand-in answers."""
    job = slurm_cluster.slurm("sbatch", "--parsable", "-o", os.devnull, "--wrap", "true").strip()
    slurm_cluster.wait_idle()
    out = slurm_cluster.slurm("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job)
    assert out.splitlines() == ["JobID|State|NodeList", f"{job}|COMPLETED|{slurm_cluster.node}"]


# ~2500 steps an epoch (several seconds each): signals sent after the first checkpoint land mid-run.
LONG_XOR = ["data.train_size=20000", "data.batch_size=8", "trainer.max_epochs=2", "trainer.deterministic=true",
            "trainer.check_val_every_n_epoch=1", "test=false"]


def start(cluster, *args: str, logs: Path) -> subprocess.Popen:
    env = {**cluster.env, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    return subprocess.Popen(
        [sys.executable, "experiments/run.py", "-m", *SMALL_JOB, *FAST_XOR, *QUIET, *args,
         f"paths.log_dir={logs}", f"hydra.sweep.dir={logs / 'sweep'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path_glob, root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not list(root.glob(path_glob)):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)


def slurm_job_id(job_dir: Path, key: str = "slurm_job_id") -> str:
    """The SLURM job a job's record names: scancel takes the raw id for a one-job array and
    <array>_<task> for a task of a larger one (SLURM 22.05)."""
    return json.loads((job_dir / "job.json").read_text())["segments"][-1][key]


def rows_of(sweep: Path) -> dict[str, dict[str, str]]:
    with open(sweep / "summary.csv") as f:
        return {r["dir"]: r for r in csv.DictReader(f)}


def test_the_readme_cpu_command_runs_with_only_the_partition_given(slurm_cluster, tmp_path):
    env = {**slurm_cluster.env, "PROJECT_ROOT": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "experiments/run.py", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
         *FAST_XOR, *QUIET, "seed=1,2", f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0 and "(2 jobs, 0 failed)" in proc.stdout, proc.stderr[-3000:]
    script = next((tmp_path / "sweep" / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "--cpus-per-task=2" in script and "--mem=8GB" in script and "gpu" not in script


def test_an_impossible_request_fails_before_submitting(slurm_cluster, tmp_path):
    began = time.time()
    proc = submit(slurm_cluster, "hydra.launcher.cpus_per_task=64", logs=tmp_path)
    assert proc.returncode == 1 and time.time() - began < 60
    assert ("hydra.launcher.cpus_per_task=64 x tasks_per_node=1 asks for 64 CPUs per node, but partition debug "
            "offers at most") in proc.stderr
    assert not (tmp_path / "sweep" / ".submitit").exists() and not slurm_cluster.jobs(), "nothing was submitted"


def test_time_limit_warning_requeues_and_the_job_resumes_bit_identical(slurm_cluster, tmp_path):
    proc = start(slurm_cluster, *LONG_XOR, "hydra.launcher.max_num_timeout=2", logs=tmp_path)
    sweep = tmp_path / "sweep"
    wait_for("0/checkpoints/last.ckpt", sweep, proc)
    time.sleep(1.0)
    slurm_cluster.slurm("scancel", "--signal=USR1", slurm_job_id(sweep / "0"))  # what SLURM sends before the limit
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0 and "(1 jobs, 0 failed)" in out, err[-3000:]
    record = json.loads((sweep / "0" / "job.json").read_text())
    assert [s["status"] for s in record["segments"]] == ["interrupted", "ok"], "stopped once, then resumed"
    assert record["segments"][1]["resumed_from"] == str(sweep / "0" / "checkpoints" / "last.ckpt")
    assert any("Requeued job" in p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))

    local = subprocess.run([sys.executable, "experiments/run.py", *FAST_XOR, *QUIET, *LONG_XOR, "trainer=cpu",
                            f"paths.log_dir={tmp_path / 'local'}"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PROJECT_ROOT": str(ROOT)}, timeout=300)
    assert local.returncode == 0, local.stderr[-3000:]
    (straight,) = (tmp_path / "local" / "train" / "runs").iterdir()
    a = torch.load(sweep / "0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b), "the requeued job ends where an uninterrupted run ends"


def test_a_job_past_its_last_requeue_is_a_timeout_row(slurm_cluster, tmp_path):
    # SLURM itself sends the warning, signal_delay_s before the 1-minute limit, to a job that
    # would need minutes; with no requeue left the job ends there. SLURM checks the limits only
    # every so often, so the warning may come earlier, even while the job still imports torch.
    proc = start(slurm_cluster, *LONG_XOR, "trainer.max_epochs=100", "hydra.launcher.max_num_timeout=0",
                 "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=30", logs=tmp_path)
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    sweep = tmp_path / "sweep"
    assert proc.returncode == 1 and "(1 jobs, 1 failed)" in out, err[-3000:]
    row = rows_of(sweep)["0"]
    assert row["status"] == "timeout" and "reached its time limit with no requeue left" in row["error"]
    record = json.loads((sweep / "0" / "job.json").read_text())
    written = sorted(str(p) for p in (sweep / "0" / "checkpoints").glob("*.ckpt"))
    assert sorted(record["checkpoints"]) == written  # none when the warning came before training
    if written:  # stopped in training: at that step
        assert str(sweep / "0" / "checkpoints" / "last.ckpt") in written


def test_a_cancelled_job_is_a_failed_row_and_the_sweep_finishes(slurm_cluster, tmp_path):
    proc = start(slurm_cluster, *LONG_XOR, "trainer.max_epochs=8", "seed=1,2", logs=tmp_path)
    sweep = tmp_path / "sweep"
    wait_for("*/checkpoints/last.ckpt", sweep, proc)
    running = sorted(p.parent.parent.name for p in sweep.glob("*/checkpoints/last.ckpt"))[0]
    slurm_cluster.slurm("scancel", slurm_job_id(sweep / running, "slurm_array_task"))
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 1 and "(2 jobs, 1 failed)" in out, err[-3000:]
    rows = rows_of(sweep)
    assert rows[running]["status"] == "failed" and "SLURM state CANCELLED" in rows[running]["error"]
    (other,) = set(rows) - {running}
    assert rows[other]["status"] == "ok"


def test_ddp_across_two_cpu_tasks_keeps_one_folder(slurm_cluster, tmp_path):
    env = {**slurm_cluster.env, "PROJECT_ROOT": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "experiments/run.py", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", *FAST_XOR, *QUIET, "trainer=ddp_slurm",
         "trainer.accelerator=cpu", "trainer.devices=2", "trainer.sync_batchnorm=false", "model.optimizer.lr=1.0",
         f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0 and "(1 jobs, 0 failed)" in proc.stdout, proc.stderr[-3000:]
    job = tmp_path / "sweep" / "0"
    assert "--ntasks-per-node=2" in next((tmp_path / "sweep" / ".submitit").glob("*/*_submission.sh")).read_text()
    assert tb_runs(tmp_path) == {job}, "one TensorBoard run"
    last = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 5 * 16, "each of the 2 ranks took half of the 1000 points, 32 a step"
    log = (job / "train.log").read_text()
    assert log.count("Output:") == 1, "only rank 0 writes the run's log"
    assert json.loads((job / "job.json").read_text())["status"] == "ok"


def test_a_pending_job_is_reported_with_slurms_reason(slurm_cluster, tmp_path):
    proc = submit(slurm_cluster, "+hydra.launcher.additional_parameters.begin='now+25'", logs=tmp_path)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "is pending: BeginTime" in proc.stdout + proc.stderr
