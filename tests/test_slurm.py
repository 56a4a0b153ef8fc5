"""`hydra/launcher=slurm` through a real SLURM cluster (tests/slurm_cluster.py, one node on
loopback): each Hydra job is one task of a job array submitted with sbatch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert sorted(r["dir"] for r in rows) == ["0", "1"]
    assert all(r["status"] == "ok" for r in rows), rows
    assert sorted(r["overrides"].split("model.optimizer.lr=")[1].split()[0] for r in rows) == ["1.0", "3.0"]
    for job in ("0", "1"):
        assert (folder / job / "job.json").is_file()
        assert any((folder / job / "checkpoints").glob("*.ckpt")), f"no checkpoint in job {job}"
        assert list((folder / job).glob("events.out.tfevents.*")), f"no TensorBoard events in job {job}"


def test_sacct_stand_in_answers_like_sacct(slurm_cluster):
    """submitit polls `sacct -o JobID,State,NodeList --parsable2 -j ID`; the stand-in answers."""
    job = slurm_cluster.slurm("sbatch", "--parsable", "-o", os.devnull, "--wrap", "true").strip()
    slurm_cluster.wait_idle()
    out = slurm_cluster.slurm("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job)
    assert out.splitlines() == ["JobID|State|NodeList", f"{job}|COMPLETED|{slurm_cluster.node}"]
