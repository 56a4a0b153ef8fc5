"""experiments/sweeps/slurm.py without a cluster: the request check reads sinfo's limits right, the
launcher config asks for GPUs only when the trainer uses them and for the trainer's nodes, a
node name that does not resolve fails at once, and a lost job's row names its cause."""

from __future__ import annotations

import socket

import pytest

from experiments.sweeps import slurm

DEBUG = [{"partition": "debug*", "cpus": "2", "memory_mb": "23000", "gres": "(null)", "time": "1:00:00",
          "nodes": "2", "job_nodes": "1-infinite"}]
GPU = [{"partition": "gpu", "cpus": "64", "memory_mb": "512000", "gres": "gpu:a100:8(S:0-1)", "time": "2-00:00:00",
        "nodes": "4", "job_nodes": "1-infinite"},
       {"partition": "gpu", "cpus": "64", "memory_mb": "512000", "gres": "gpu:v100:4", "time": "2-00:00:00",
        "nodes": "8", "job_nodes": "1-infinite"}]


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
    ({"nodes": 3}, "hydra.launcher.nodes=3 (trainer.num_nodes) asks for 3 nodes, but partition debug offers at most 2 nodes"),
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
                         "gpus_per_node": 4, "timeout_min": 240, "nodes": 12})


def test_nodes_are_counted_among_those_that_fit_and_within_the_partitions_job_size(monkeypatch):
    monkeypatch.setattr(slurm, "_sinfo", lambda partition: GPU)
    eight_gpus = {"partition": "gpu", "cpus_per_task": 8, "tasks_per_node": 8, "gpus_per_node": 8, "mem_gb": 64}
    slurm.check_request({**eight_gpus, "nodes": 4})
    with pytest.raises(slurm.SlurmRequestError, match="offers at most 4 nodes that fit the request"):
        slurm.check_request({**eight_gpus, "nodes": 5})  # the other 8 nodes have 4 GPUs
    monkeypatch.setattr(slurm, "_sinfo", lambda partition: [{**r, "job_nodes": "1-2"} for r in GPU])  # MaxNodes=2
    with pytest.raises(slurm.SlurmRequestError, match="offers at most 2 nodes"):
        slurm.check_request({**eight_gpus, "nodes": 3})


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


def test_launcher_nodes_follow_the_trainers_num_nodes():
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("run", overrides=["hydra/launcher=slurm", "trainer=ddp_slurm", "trainer.num_nodes=2"],
                      return_hydra_config=True)
    assert cfg.hydra.launcher.nodes == 2 and cfg.hydra.launcher.tasks_per_node == 4


@pytest.mark.parametrize("params, trainer, jobs, message", [
    ({"nodes": 2, "tasks_per_node": 1}, {"num_nodes": 1, "devices": 1}, [[]],
     "hydra.launcher.nodes=2 but trainer.num_nodes=1"),
    ({"nodes": 1, "tasks_per_node": 1}, {"num_nodes": 1, "devices": 2}, [[]],
     "hydra.launcher.tasks_per_node=1 but trainer.devices=2"),
    ({"nodes": 1, "tasks_per_node": 1}, {"num_nodes": 1, "devices": 1}, [["trainer.num_nodes=1"], ["trainer.num_nodes=2"]],
     "job 1 sets trainer.num_nodes=2, but one SLURM job array has one shape"),
])
def test_nodes_and_tasks_that_disagree_with_the_trainer_are_refused(params, trainer, jobs, message):
    slurm.check_shape({"nodes": 2, "tasks_per_node": 1}, {"num_nodes": 2, "devices": 1}, [["seed=1"], ["seed=2"]])
    with pytest.raises(slurm.SlurmRequestError, match=message):
        slurm.check_shape(params, trainer, jobs)


def test_a_first_node_name_that_does_not_resolve_fails_at_once(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("SLURMD_NODENAME", "gpu7")
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    slurm.check_root_node_resolves()
    monkeypatch.setenv("SLURM_NODELIST", "nowhere-node[1-2].invalid")

    def unknown(host, *args):  # what the resolver answers, without waiting for one here
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(slurm.socket, "getaddrinfo", unknown)
    with pytest.raises(slurm.SlurmNodeNameError, match=r"'nowhere-node1.invalid' \(the first node of "
                       r"SLURM_NODELIST=nowhere-node\[1-2\].invalid\) does not resolve on node gpu7"):
        slurm.check_root_node_resolves()
    monkeypatch.setenv("SLURM_NNODES", "1")  # one node: the ranks meet on it
    slurm.check_root_node_resolves()


class FakeJob:
    """What _why_lost reads of a submitit job: its id, SLURM's state and each task's stderr."""

    def __init__(self, state: str, *stderr: str):
        self.job_id, self.state, self.num_tasks, self._stderr = "7_1", state, len(stderr), stderr

    def task(self, i: int) -> "FakeJob":
        task = FakeJob(self.state, self._stderr[i])
        return task

    def stderr(self) -> str:
        return self._stderr[0]


REQUEUED = "slurmstepd-node1: error: *** JOB 8 ON node1 CANCELLED AT 2026-01-01T10:00:00 DUE TO JOB REQUEUE ***\n"


@pytest.mark.parametrize("job, error", [
    (FakeJob("CANCELLED", REQUEUED + "slurmstepd-node1: error: *** STEP 8.0 ON node1 CANCELLED AT 2026-01-01T11:00:00 ***\n"
             "slurmstepd-node1: error: *** JOB 8 ON node1 CANCELLED AT 2026-01-01T11:00:00 ***\n"
             "srun: error: node2: task 1: Killed\n", ""),
     "SLURM state CANCELLED: JOB 8 ON node1 CANCELLED AT 2026-01-01T11:00:00"),
    (FakeJob("FAILED", REQUEUED + "srun: error: node2: task 1: Killed\nsrun: error: node1: task 0: Exited with exit code 1\n", ""),
     "SLURM state FAILED: task 1 on node2: Killed"),
    (FakeJob("FAILED", "srun: error: node2: task 1: Exited with exit code 1\n",
             "Traceback (most recent call last):\n  ...\nValueError: a bad batch\n"),
     "SLURM state FAILED: task 1 on node2: Exited with exit code 1; it raised ValueError: a bad batch"),
    (FakeJob("NODE_FAIL", "slurmstepd-node2: error: *** JOB 8 ON node2 CANCELLED AT 2026-01-01T11:00:00 DUE TO NODE FAILURE ***\n"),
     "SLURM state NODE_FAIL: JOB 8 ON node2 CANCELLED AT 2026-01-01T11:00:00 DUE TO NODE FAILURE"),
])
def test_a_lost_jobs_row_names_slurms_state_and_the_cause(job, error):
    lost = Exception("Job 8 (task: 0) with path /x/8_0_result.pkl\nhas not produced any output (state: FAILED)\n"
                     "Error stream produced:\n----------------------------------------\n" + job.stderr())
    assert slurm._why_lost(job, lost) == ("failed", error)


@pytest.mark.parametrize("resumable, advice", [(False, "so there is nothing to resume"),
                                               (True, "resume it with resume=<job folder>")])
def test_a_warning_during_the_import_of_torch_is_a_timeout_row_whatever_error_follows(resumable, advice):
    """SIGUSR1 inside ``import torch``: submitit's error can be swallowed by an import guard, and the
    task ends in what the half-imported module breaks later; submitit's log line still tells."""
    warned = ("submitit WARNING (2026-12-07 17:00:01,000) - Caught signal SIGUSR1 on node1: this job is timed-out.\n"
              "Traceback (most recent call last):\n  ...\n"
              "AttributeError: module 'torch._dynamo' has no attribute 'utils'\n")
    job = FakeJob("FAILED", "srun: error: node1: task 0: Exited with exit code 1\n" + warned, "")
    status, error = slurm._why_lost(job, AttributeError("module 'torch._dynamo' has no attribute 'utils'"),
                                    resumable=resumable)
    assert status == "timeout" and "reached its time limit" in error and advice in error
    unwarned = FakeJob("FAILED", "srun: error: node1: task 0: Exited with exit code 1\n" + warned.split("\n", 1)[1], "")
    assert slurm._why_lost(unwarned, AttributeError("x"))[0] == "failed", "without the warning it is a failure"
    preempted = FakeJob("FAILED", warned.replace("timed-out", "preempted"), "")
    assert slurm._why_lost(preempted, AttributeError("x"))[0] == "failed", "a preemption is no time limit"


def test_a_task_the_time_limit_warning_killed_is_a_timeout_row():
    job = FakeJob("FAILED", "srun: error: node1: task 0: User defined signal 1\n", "")
    status, error = slurm._why_lost(job, Exception("has not produced any output (state: FAILED)"))
    assert status == "timeout" and "time-limit warning (SIGUSR1" in error and "while it was starting" in error
