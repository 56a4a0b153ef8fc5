"""DDP on the CPU (trainer=ddp_cpu: 2 processes, gloo) through the real CLI: one output
folder, one TensorBoard run and one set of checkpoints per run, also inside a multirun."""

from __future__ import annotations

import math

import pytest
import torch

from tests.test_sweeps import FAST_XOR, cli, job_dirs, read_summary, tb_scalars

DDP_XOR = [*FAST_XOR, "trainer=ddp_cpu", "model.optimizer.lr=1.0"]


# Each of the 2 ranks takes its half of the 1000 training points, 32 per step: 16 steps an
# epoch instead of 32 (the effective batch is 2 x 32).
STEPS_PER_EPOCH = math.ceil(1000 / 2 / 32)


def assert_one_ddp_run(run_dir):
    """Both ranks trained, and everything was written once, into run_dir."""
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints, checkpoints
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["run_config"]["trainer"]["devices"] == 2
    assert last["global_step"] == 5 * STEPS_PER_EPOCH, "the data was not sharded over 2 ranks"
    events = {p.parent for p in run_dir.parent.rglob("events.out.tfevents.*")}
    assert events == {run_dir}, "one TensorBoard run"
    assert (run_dir / "config_tree.log").exists()
    return tb_scalars(run_dir)


@pytest.mark.slow
def test_ddp_cpu_trains_xor_into_one_folder(tmp_path):
    cli(*DDP_XOR, logs=tmp_path)
    runs = list((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 1, f"DDP made {len(runs)} run folders: {runs}"
    assert [p.name for p in tmp_path.iterdir()] == ["train"] and [p.name for p in (tmp_path / "train").iterdir()] == ["runs"]
    scalars = assert_one_ddp_run(runs[0])
    assert scalars["val/acc"] == 1.0 and scalars["test/acc"] == 1.0


@pytest.mark.slow
def test_ddp_cpu_inside_a_multirun_gives_one_folder_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    cli("-m", *DDP_XOR, "seed=1,2", f"hydra.sweep.dir={sweep}", logs=tmp_path)
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0_seed=1", "1_seed=2"]
    assert not (tmp_path / "train").exists(), "a rank re-ran the script and made its own folder"
    for job in jobs:
        assert {p.parent for p in job.rglob("events.out.tfevents.*")} == {job}
        assert len(list((job / "checkpoints").iterdir())) == 2
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (job / "train.log").read_text()
    rows = read_summary(sweep)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(float(r["val/acc"]) >= 0.99 for r in rows)


# A spawned gloo rank sometimes aborts as its process exits, after its work is done ("terminate
# called without an active exception", then SIGABRT): a race in torch's shutdown, 2 of ~8 CI runs
# of this test on the 2-core VM and 1 of 16 runs by hand under load. Only that failure is retried, once.
UPSTREAM_EXIT_ABORT = ("terminate called without an active exception", "terminated with signal SIGABRT")


@pytest.mark.slow
def test_ddp_spawn_as_on_gpus_keeps_one_folder(tmp_path):
    """trainer=ddp (GPUs) starts its ranks with spawn; the same path on the CPU."""
    try:
        cli(*DDP_XOR, "trainer.strategy.start_method=spawn", logs=tmp_path / "first")
        logs = tmp_path / "first"
    except AssertionError as failure:
        if not all(sign in str(failure) for sign in UPSTREAM_EXIT_ABORT):
            raise
        logs = tmp_path / "retry"
        cli(*DDP_XOR, "trainer.strategy.start_method=spawn", logs=logs)
    runs = list((logs / "train" / "runs").iterdir())
    assert len(runs) == 1, f"DDP made {len(runs)} run folders: {runs}"
    scalars = assert_one_ddp_run(runs[0])
    assert scalars["test/acc"] == 1.0


@pytest.mark.slow
def test_every_rank_running_the_pipeline_keeps_one_folder(tmp_path):
    """Under SLURM (trainer=ddp_slurm) every task runs the whole pipeline as one rank; the
    `popen` start method does the same on one machine: only rank 0 prints and writes."""
    cli(*DDP_XOR, "trainer.strategy.start_method=popen", logs=tmp_path)
    runs = list((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 1, f"DDP made {len(runs)} run folders: {runs}"
    scalars = assert_one_ddp_run(runs[0])
    assert scalars["test/acc"] == 1.0
    assert (runs[0] / "config_tree.log").read_text().count("CONFIG") == 1
