"""experiments/sweeps/slurm.py without a cluster: the request check reads sinfo's limits right, and the
launcher config asks for GPUs only when the trainer uses them."""

from __future__ import annotations

import pytest

from experiments.sweeps import slurm

DEBUG = [{"partition": "debug*", "cpus": "2", "memory_mb": "23000", "gres": "(null)", "time": "1:00:00"}]
GPU = [{"partition": "gpu", "cpus": "64", "memory_mb": "512000", "gres": "gpu:a100:8(S:0-1)", "time": "2-00:00:00"}]


def test_time_limits_and_gres_parse_as_slurm_prints_them():
    assert slurm._minutes("infinite") == float("inf")
    assert slurm._minutes("1:00:00") == 60 and slurm._minutes("2-00:00:00") == 2880 and slurm._minutes("30") == 30
    assert slurm._minutes("45:30") == pytest.approx(45.5)
    assert slurm._gpus("gpu:a100:8(S:0-1)") == 8 and slurm._gpus("gpu:4") == 4 and slurm._gpus("(null)") == 0


@pytest.mark.parametrize("request_, message", [
    ({"cpus_per_task": 8, "tasks_per_node": 1}, "hydra.launcher.cpus_per_task=8 x tasks_per_node=1 asks for 8 CPUs per node, but partition debug offers at most 2"),
    ({"mem_gb": 64}, "hydra.launcher.mem_gb=64 asks for 64 GB memory per node, but partition debug offers at most 22.46"),
    ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1 asks for 1 GPUs per node, but partition debug offers at most 0"),
    ({"timeout_min": 240}, "hydra.launcher.timeout_min=240 asks for 240 minutes per job, but partition debug offers at most 60"),
])
def test_an_impossible_request_names_the_request_and_the_limit(monkeypatch, request_, message):
    monkeypatch.setattr(slurm, "_sinfo", lambda partition: DEBUG)
    fits = {"cpus_per_task": 1, "tasks_per_node": 1, "mem_gb": 1, "gpus_per_node": None, "timeout_min": 5}
    slurm.check_request(fits)
    with pytest.raises(slurm.SlurmRequestError, match="would wait forever") as error:
        slurm.check_request({**fits, **request_})
    assert message in str(error.value)


def test_a_gpu_partition_takes_a_gpu_request(monkeypatch):
    monkeypatch.setattr(slurm, "_sinfo", lambda partition: GPU)
    slurm.check_request({"partition": "gpu", "cpus_per_task": 8, "tasks_per_node": 4, "mem_gb": 64,
                         "gpus_per_node": 4, "timeout_min": 240})


@pytest.mark.parametrize("overrides, gpus, tasks, backend", [
    ([], None, 1, None),
    (["trainer=gpu"], 1, 1, None),
    (["trainer=ddp_slurm"], 4, 4, "nccl"),
    (["trainer=ddp_slurm", "trainer.accelerator=cpu", "trainer.devices=2"], None, 2, "gloo"),
])
def test_launcher_asks_for_gpus_only_for_a_gpu_trainer(tmp_path, overrides, gpus, tasks, backend):
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("run", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == "hydra_plugins.lightning_hydra_lab.slurm_launcher.SlurmLauncher"
    assert cfg.hydra.launcher.gpus_per_node == gpus and cfg.hydra.launcher.tasks_per_node == tasks
    strategy = cfg.trainer.get("strategy")
    assert (strategy.process_group_backend if strategy and "process_group_backend" in strategy else None) == backend
