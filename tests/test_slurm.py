"""`hydra/launcher=slurm` through a real SLURM cluster (tests/helpers/slurm_cluster.py, two nodes on
loopback): each Hydra job is one task of a job array submitted with sbatch; a multi-node job
runs one DDP rank per node."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
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
    header, row = out.splitlines()
    assert header == "JobID|State|NodeList" and row.rsplit("|", 1)[0] == f"{job}|COMPLETED"
    assert row.rsplit("|", 1)[1] in slurm_cluster.nodes


# ~2500 steps an epoch (several seconds each): signals sent after the first checkpoint land mid-run.
LONG_XOR = ["data.train_size=20000", "data.batch_size=8", "trainer.max_epochs=2", "trainer.deterministic=true",
            "trainer.check_val_every_n_epoch=1", "test=false"]


def start(cluster, *args: str, logs: Path, job: list[str] = SMALL_JOB) -> subprocess.Popen:
    env = {**cluster.env, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    return subprocess.Popen(
        [sys.executable, "experiments/run.py", "-m", *job, *FAST_XOR, *QUIET, *args,
         f"paths.log_dir={logs}", f"hydra.sweep.dir={logs / 'sweep'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path_glob, root: Path, proc: subprocess.Popen, timeout: float = 120, every: float = 0.2) -> None:
    deadline = time.time() + timeout
    while not list(root.glob(path_glob)):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(every)


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


@pytest.mark.parametrize("request_, message", [
    ("hydra.launcher.cpus_per_task=64",
     "hydra.launcher.cpus_per_task=64 x tasks_per_node=1 asks for 64 CPUs per node, but partition debug offers at most 2 "),
    ("hydra.launcher.nodes=3",  # PartitionNodeLimit: it would pend forever
     "hydra.launcher.nodes=3 (trainer.num_nodes) asks for 3 nodes, but partition debug offers at most 2 nodes (sinfo)"),
], ids=["cpus", "nodes"])
def test_an_impossible_request_fails_before_submitting(slurm_cluster, tmp_path, request_, message):
    began = time.time()
    proc = submit(slurm_cluster, request_, logs=tmp_path)
    assert proc.returncode == 1 and time.time() - began < 60
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "sweep" / ".submitit").exists() and not slurm_cluster.jobs(), "nothing was submitted"


def test_time_limit_warning_requeues_and_the_job_resumes_bit_identical(slurm_cluster, tmp_path):
    # the uninterrupted run to compare with runs meanwhile, on the core the job does not use
    with open(tmp_path / "local.err", "w") as local_err:
        local = subprocess.Popen([sys.executable, "experiments/run.py", *FAST_XOR, *QUIET, *LONG_XOR, "trainer=cpu",
                                  f"paths.log_dir={tmp_path / 'local'}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=local_err, env={**os.environ, "PROJECT_ROOT": str(ROOT), "TORCH_NUM_THREADS": "1"})
    try:
        proc = start(slurm_cluster, *LONG_XOR, "hydra.launcher.max_num_timeout=2", logs=tmp_path)
        sweep = tmp_path / "sweep"
        wait_for("0/checkpoints/last.ckpt", sweep, proc)
        time.sleep(1.0)
        slurm_cluster.slurm("scancel", "--signal=USR1", slurm_job_id(sweep / "0"))  # what SLURM sends before the limit
        out, err = proc.communicate(timeout=300)
        slurm_cluster.wait_idle()
        assert local.wait(timeout=300) == 0, (tmp_path / "local.err").read_text()[-3000:]
    finally:
        if local.poll() is None:
            local.kill()
    assert proc.returncode == 0 and "(1 jobs, 0 failed)" in out, err[-3000:]
    record = json.loads((sweep / "0" / "job.json").read_text())
    assert [s["status"] for s in record["segments"]] == ["interrupted", "ok"], "stopped once, then resumed"
    assert record["segments"][1]["resumed_from"] == str(sweep / "0" / "checkpoints" / "last.ckpt")
    assert any("Requeued job" in p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))

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


def ddp_run(cluster, logs: Path, *shape: str) -> subprocess.CompletedProcess:
    """The README's DDP command on CPU tasks (gloo), shaped by trainer.devices / trainer.num_nodes."""
    env = {**cluster.env, "PROJECT_ROOT": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "experiments/run.py", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", *FAST_XOR, *QUIET, "trainer=ddp_slurm",
         "trainer.accelerator=cpu", *shape, "trainer.sync_batchnorm=false", "model.optimizer.lr=1.0",
         f"paths.log_dir={logs}", f"hydra.sweep.dir={logs / 'sweep'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    cluster.wait_idle()
    return proc


@pytest.fixture(scope="module")
def two_tasks_one_node(slurm_cluster, tmp_path_factory):
    logs = tmp_path_factory.mktemp("ddp_one_node")
    return logs, ddp_run(slurm_cluster, logs, "trainer.devices=2")


def test_ddp_across_two_cpu_tasks_keeps_one_folder(two_tasks_one_node):
    tmp_path, proc = two_tasks_one_node
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
    proc = submit(slurm_cluster, "+hydra.launcher.additional_parameters.begin='now+12'", logs=tmp_path)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "is pending: BeginTime" in proc.stdout + proc.stderr


# -- two nodes: one DDP rank on each

def test_the_readme_multi_node_command_trains_across_two_nodes(slurm_cluster, two_tasks_one_node, tmp_path):
    # trainer.num_nodes alone: hydra.launcher.nodes follows it
    proc = ddp_run(slurm_cluster, tmp_path, "trainer.num_nodes=2", "trainer.devices=1")
    assert proc.returncode == 0 and "(1 jobs, 0 failed)" in proc.stdout, proc.stderr[-3000:]
    (script,) = (tmp_path / "sweep" / ".submitit").glob("*/*_submission.sh")
    text = script.read_text()
    assert "--nodes=2" in text and "--ntasks-per-node=1" in text and "--kill-on-bad-exit=1" in text
    array_id = script.parent.name
    (done,) = [line for line in slurm_cluster.jobcomp.read_text().splitlines() if f"JobId={array_id} " in line]
    assert "JobState=COMPLETED" in done and "NodeList=node[1-2]" in done and "NodeCnt=2" in done, done
    logs = "".join(p.read_text() for p in script.parent.glob("*_log.out"))
    assert "node=0(2), global_rank=0(2)" in logs and "node=1(2), global_rank=1(2)" in logs, "one rank per node"

    job = tmp_path / "sweep" / "0"
    assert [p.name for p in (tmp_path / "sweep").iterdir() if not p.name.startswith(".") and p.is_dir()] == ["0"]
    assert tb_runs(tmp_path) == {job}, "one TensorBoard run"
    assert (job / "train.log").read_text().count("Output:") == 1, "only rank 0 writes the run's log"
    last = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 5 * 16, "each of the 2 ranks took half of the 1000 points, 32 a step"
    one_node = torch.load(two_tasks_one_node[0] / "sweep" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.equal(last["state_dict"][k], v) for k, v in one_node["state_dict"].items()), \
        "two nodes with one task each train the weights of one node with two tasks"


# One rank on each node, one CPU each: two such jobs run at once. ~125 steps an epoch on each
# rank: faults sent after the first checkpoint land mid-run.
TWO_NODE_JOB = [*(o for o in SMALL_JOB if not o.startswith(("trainer=", "hydra.launcher.tasks_per_node"))),
                "hydra.launcher.max_num_timeout=0"]
MULTI_NODE = ["trainer=ddp_slurm", "trainer.accelerator=cpu", "trainer.num_nodes=2", "trainer.devices=1",
              "trainer.sync_batchnorm=false", "data.train_size=2000", "data.batch_size=8",
              "trainer.check_val_every_n_epoch=1", "test=false"]


def task_pid(cluster, slurm_job_id: str, rank: int) -> int:
    """The process of one task (rank) of a running job of this cluster, found by its environment."""
    for proc in Path("/proc").iterdir():
        try:
            env = dict(e.split("=", 1) for e in (proc / "environ").read_text().split("\0") if "=" in e)
            command = (proc / "cmdline").read_text()
        except (OSError, ValueError):
            continue
        if (env.get("SLURM_CONF") == cluster.env["SLURM_CONF"] and env.get("SLURM_JOB_ID") == slurm_job_id
                and env.get("SLURM_PROCID") == str(rank) and "submitit.core._submit" in command):
            return int(proc.name)
    raise AssertionError(f"no task {rank} of SLURM job {slurm_job_id} runs")


def left_queue_within(cluster, job_id: str, seconds: float) -> bool:
    deadline = time.time() + seconds
    while job_id in cluster.slurm("squeue", "-h", "-r", "-o", "%i").split():
        if time.time() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture(scope="module")
def faults_on_two_nodes(slurm_cluster, tmp_path_factory):
    """A sweep of three two-node jobs (one CPU on each node: two run at once): job 0 is cancelled
    mid-run (scancel), one rank of job 1 is killed mid-run (as the kernel's OOM killer would),
    job 2 (one epoch) runs once they are gone."""
    logs = tmp_path_factory.mktemp("slurm_faults")
    proc = start(slurm_cluster, *MULTI_NODE, "trainer.max_epochs=100,101,1", logs=logs, job=TWO_NODE_JOB)
    sweep = logs / "sweep"
    wait_for("0_*/checkpoints/last.ckpt", sweep, proc)
    wait_for("1_*/checkpoints/last.ckpt", sweep, proc)
    (cancelled,), (killed,) = sweep.glob("0_*"), sweep.glob("1_*")
    time.sleep(1.0)
    slurm_cluster.slurm("scancel", slurm_job_id(cancelled, "slurm_array_task"))
    os.kill(task_pid(slurm_cluster, slurm_job_id(killed), rank=1), 9)
    ended = {job: left_queue_within(slurm_cluster, slurm_job_id(job, "slurm_array_task"), 60)
             for job in (cancelled, killed)}
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    return sweep, proc, out, err, ended


def test_a_rank_killed_mid_run_ends_its_job_within_a_minute_as_a_failed_row(faults_on_two_nodes):
    sweep, proc, out, err, ended = faults_on_two_nodes
    assert proc.returncode == 1 and "(3 jobs, 2 failed)" in out, err[-3000:]
    (killed,) = sweep.glob("1_*")
    assert ended[killed], "srun ended the job step when the rank died (the other waited in DDP)"
    row = rows_of(sweep)[killed.name]
    assert row["status"] == "failed" and row["error"] == "SLURM state FAILED: task 1 on node2: Killed", row


def test_a_cancelled_two_node_job_stops_all_ranks_at_one_step_and_is_a_failed_row(faults_on_two_nodes):
    sweep, proc, out, err, ended = faults_on_two_nodes
    assert proc.returncode == 1 and "(3 jobs, 2 failed)" in out, err[-3000:]
    (cancelled,) = sweep.glob("0_*")
    assert ended[cancelled]
    row = rows_of(sweep)[cancelled.name]
    assert row["status"] == "failed", row
    assert re.match(r"SLURM state CANCELLED: JOB \d+ ON node1 CANCELLED AT \d{4}-", row["error"]), row
    # both ranks stopped at the signal's step: rank 0 saved it (a checkpoint both ranks take part in)
    record = json.loads((cancelled / "job.json").read_text())
    assert record["segments"][-1]["status"] == "interrupted"
    task0 = next((sweep / ".submitit").glob(f"*/{slurm_job_id(cancelled, 'slurm_array_task')}_0_log.err")).read_text()
    step = int(re.search(r"Run interrupted by SIGTERM at step (\d+)\.", task0).group(1))
    assert torch.load(cancelled / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step > 125
    (finished,) = sweep.glob("2_*")
    assert rows_of(sweep)[finished.name]["status"] == "ok", "the sweep goes on after its lost jobs"


def test_an_early_time_limit_warning_on_two_nodes_ends_the_job_as_a_timeout(slurm_cluster, tmp_path):
    # SLURM may send the warning well before signal_delay_s: here while the ranks still import torch
    # (Hydra has written the job's config and runs the job; the run has not started, no checkpoint
    # exists). Rank 0 gets submitit's "not requeued" error there, which Hydra keeps as the job's
    # result: the job must still end, not leave rank 1 waiting for rank 0 in DDP.
    proc = start(slurm_cluster, *MULTI_NODE, "trainer.max_epochs=100", logs=tmp_path, job=TWO_NODE_JOB)
    wait_for("0/.hydra/config.yaml", tmp_path / "sweep", proc, every=0.02)
    (job,) = slurm_cluster.jobs()
    for rank in (0, 1):  # as slurmstepd sends it, without scancel's delay
        os.kill(task_pid(slurm_cluster, job, rank), signal.SIGUSR1)
    ended = left_queue_within(slurm_cluster, job, 60)
    if not ended:
        slurm_cluster.slurm("scancel", job)  # the next tests need the nodes
    assert ended, "a rank waited for rank 0, which had ended"
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 1 and "(1 jobs, 1 failed)" in out, err[-3000:]
    row = rows_of(tmp_path / "sweep")["0"]
    assert row["status"] == "timeout", row
    resumable = (tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt").exists()
    then = "resume it with resume=<job folder>" if resumable else "so there is nothing to resume"
    assert then in row["error"], row  # a resume command only where there is a checkpoint to resume
    record = json.loads((tmp_path / "sweep" / "0" / "job.json").read_text())
    assert record["checkpoints"] == sorted(str(p) for p in (tmp_path / "sweep" / "0" / "checkpoints").glob("*.ckpt"))


def test_a_two_node_run_that_fails_on_its_own_is_a_failed_row_that_names_its_error(slurm_cluster, tmp_path):
    # A learning rate of 1e38 overflows the weights, which DDP keeps the same on both ranks, within
    # a few steps: the run stops at its first non-finite loss, as on one node.
    proc = start(slurm_cluster, *MULTI_NODE, "trainer.max_epochs=1", "model.optimizer.lr=1e38", logs=tmp_path,
                 job=TWO_NODE_JOB)
    out, err = proc.communicate(timeout=300)
    slurm_cluster.wait_idle()
    assert proc.returncode == 1 and "(1 jobs, 1 failed)" in out, out[-2000:] + err[-3000:]
    row = rows_of(tmp_path / "sweep")["0"]
    assert row["status"] == "failed" and re.search(r"NonFiniteLoss: train/loss is -?(inf|nan) at global step \d+",
                                                   row["error"]), row
    record = json.loads((tmp_path / "sweep" / "0" / "job.json").read_text())
    assert record["status"] == "failed" and "train/loss is" in record["error"], record


@pytest.mark.parametrize("journal", [False, True], ids=["sqlite", "journal"])
def test_a_pruned_search_submits_each_trial_to_slurm_as_a_slot_frees(slurm_cluster, tmp_path, journal):
    """An Optuna search with the median pruner through SLURM: each trial its own SLURM job (no job
    array: a new one is submitted as soon as one ends), reporting to the study from its node.
    The study is SQLite (this cluster's nodes share this machine's disk), or Optuna's journal file,
    the storage for a file system that the nodes share (README: Where the study lives)."""
    import optuna

    from experiments.runs.study_storage import open_storage

    study_dir = tmp_path / "train" / "optuna" / "on_slurm"
    storage = f"journal://{tmp_path / 'shared' / 'on_slurm.log'}" if journal else f"sqlite:///{study_dir / 'study.db'}"
    env = {**slurm_cluster.env, "PROJECT_ROOT": str(ROOT)}
    env.pop("TORCH_NUM_THREADS", None)
    proc = subprocess.run(  # the study's own folder holds its invocations' folders and the summary
        [sys.executable, "experiments/run.py", "-m", *SMALL_JOB, "hparams_search=xor", *QUIET,
         "hydra.sweeper.study_name=on_slurm", "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=2",
         "hydra.sweeper.pruner.n_startup_trials=1", "trainer.max_epochs=8", "trainer.check_val_every_n_epoch=1",
         f"hydra.sweeper.storage={storage}", f"paths.log_dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    slurm_cluster.wait_idle()
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    trials = optuna.load_study(study_name="on_slurm", storage=open_storage(storage)).trials
    states = [t.state.name for t in trials]
    assert len(trials) == 5 and set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states, states
    assert all(t.intermediate_values for t in trials), "every job reported to the study from its node"
    rows = rows_of(study_dir)
    for trial in trials:
        job = Path(trial.user_attrs["job_dir"])
        record = json.loads((job / "job.json").read_text())
        assert record["status"] == rows[str(job.relative_to(study_dir))]["status"] == \
            {"COMPLETE": "ok", "PRUNED": "pruned"}[trial.state.name]
        assert record["segments"][-1]["slurm_job_id"] and not record["segments"][-1]["slurm_array_task"]
        assert f"trial.storage={storage}" in record["overrides"]
    scripts = list(study_dir.glob("*/.submitit/*/*_submission.sh"))
    assert len(scripts) == 5 and not any("--array" in s.read_text() for s in scripts), "one SLURM job per trial"
    assert f"(5 jobs, 0 failed, {states.count('PRUNED')} pruned)" in proc.stdout
