"""Hydra's submitit SLURM launcher, made to behave on a real cluster (hydra/launcher=slurm):

- A request the partition can never satisfy (CPUs, memory, GPUs, time) fails before anything is
  submitted, naming the request and the partition's limit as ``sinfo`` reports it.
- While the sweep waits, a job that stays pending is reported with SLURM's reason.
- SLURM's warning before the time limit (SIGUSR1 here, ``signal_delay_s`` ahead) makes the job
  save a checkpoint at that step (lightning_modules/run_guard.py), then submitit requeues it; the
  requeued job resumes in the same folder (experiments/runs/folder.py). After ``max_num_timeout``
  requeues it is a ``timeout`` row. A preemption's SIGTERM saves the checkpoint too; SLURM
  requeues a preempted job itself, and it resumes the same way.
- A job that SLURM killed or that was cancelled is a ``failed`` row with SLURM's state, and the
  sweep still finishes, writes its summary and exits 1.

``launch`` repeats the plugin's submission code (it has no hook between submitting and waiting);
tests/test_slurm.py runs it against a real one-node cluster. The launcher class itself is
declared in hydra_plugins/lightning_hydra_lab/slurm_launcher.py.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from omegaconf import OmegaConf

from experiments.sweeps.hydra_internals import submitit_executor
from experiments.sweeps.lost_jobs import lost_job
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

# submitit reads this when it is imported: SLURM then sends SIGUSR1, the signal a run stops at
# with a checkpoint, before the time limit (submitit's own default, USR2, would stop it mid-step).
os.environ.setdefault("SUBMITIT_PREEMPT_SIGNAL", "USR1")

log = logging.getLogger(__name__)
PENDING_CHECK_S = 10.0  # how often squeue is asked why a job waits; a reason is said once


class SlurmRequestError(ValueError):
    pass


def _sinfo(partition: str | None) -> list[dict[str, str]]:
    fields = "%P|%c|%m|%G|%l"
    args = ["sinfo", "-h", "-o", fields] + (["-p", partition] if partition else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    rows = [dict(zip(("partition", "cpus", "memory_mb", "gres", "time"), line.split("|")))
            for line in out.splitlines() if line.strip()]
    if not partition:  # the default partition is marked with '*'
        rows = [r for r in rows if r["partition"].endswith("*")] or rows
    return rows


def _minutes(limit: str) -> float:
    """SLURM's [D-]HH:MM:SS / MM:SS / MM time limit in minutes (inf for 'infinite')."""
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return float("inf")
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + s / 60


def _gpus(gres: str) -> int:
    return sum(int(n) for n in re.findall(r"gpu(?::[^:,()]+)?:(\d+)", gres))


def check_request(params: dict[str, Any]) -> None:
    """Raise ``SlurmRequestError`` when no node of the partition can ever run one job."""
    partition = params.get("partition")
    try:
        rows = _sinfo(partition)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("Could not check the request against the partition (sinfo: %s)", exc)
        return
    if not rows:
        raise SlurmRequestError(f"hydra.launcher.partition={partition}: SLURM has no such partition "
                                f"(sinfo lists: {', '.join(r['partition'] for r in _sinfo(None)) or 'none'})")
    name = rows[0]["partition"].rstrip("*")
    tasks = int(params.get("tasks_per_node") or 1)
    wanted = {
        "CPUs": (int(params.get("cpus_per_task") or 1) * tasks,
                 f"hydra.launcher.cpus_per_task={params.get('cpus_per_task')} x tasks_per_node={tasks}",
                 max(int(r["cpus"].rstrip("+")) for r in rows), ""),
        "memory": (float(params.get("mem_gb") or 0), f"hydra.launcher.mem_gb={params.get('mem_gb')}",
                   max(int(r["memory_mb"].rstrip("+")) for r in rows) / 1024, " GB"),
        "GPUs": (int(params.get("gpus_per_node") or 0), f"hydra.launcher.gpus_per_node={params.get('gpus_per_node')}",
                 max(_gpus(r["gres"]) for r in rows), ""),
        "minutes": (float(params.get("timeout_min") or 0), f"hydra.launcher.timeout_min={params.get('timeout_min')}",
                    max(_minutes(r["time"]) for r in rows), ""),
    }
    for what, (asked, setting, limit, unit) in wanted.items():
        if asked > limit:
            per = "per job" if what == "minutes" else "per node"
            raise SlurmRequestError(
                f"{setting} asks for {asked:g}{unit} {what} {per}, but partition {name} offers at most "
                f"{limit:g}{unit} (sinfo); the job would wait forever. Lower the request "
                f"(or, for GPUs, use trainer=cpu) or pick another partition with hydra.launcher.partition=...")


def _why_lost(job: Any, exc: Exception) -> tuple[str, str]:
    """(status, error) for a job that returned no result, from submitit's error and SLURM's state."""
    text = str(exc)
    if "timed-out too many times" in text or job.state == "TIMEOUT":
        return "timeout", (f"SLURM job {job.job_id} reached its time limit with no requeue left "
                           "(hydra.launcher.max_num_timeout); resume it with resume=<job folder>")
    state = job.state if job.state not in ("RUNNING", "PENDING", "UNKNOWN") else "ended"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if "Error" in line or "state:" in line), lines[0] if lines else "")
    return "failed", f"SLURM state {state}: {cause}"[:500]


class ClusterBehaviour:
    """Mixed into Hydra's submitit SLURM launcher by hydra_plugins/lightning_hydra_lab (Hydra
    takes launchers only from that namespace)."""

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Runs in the SLURM job. A run stopped by the time-limit warning (SIGUSR1) has saved its
        checkpoint; submitit's own handler for that signal then requeues the job, or, after
        ``max_num_timeout`` requeues, ends it with an error that the sweep records as a timeout.
        After SIGTERM (``scancel``, or a preemption, which SLURM requeues itself) the job ends."""
        from lightning_modules.run_guard import RunInterrupted

        try:
            return super().__call__(*args, **kwargs)
        except RunInterrupted as stop:
            requeue = signal.getsignal(signal.SIGUSR1)  # submitit's, put back by the run folder
            if stop.signum == signal.SIGUSR1 and callable(requeue):
                requeue(signal.SIGUSR1, None)
            raise

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        params = dict(self.params)
        check_request(params)
        init_keys = {"max_num_timeout", "submitit_folder"}
        executor = submitit.AutoExecutor(cluster=submitit_executor(self), folder=params["submitit_folder"],
                                         slurm_max_num_timeout=params.get("max_num_timeout", 0))
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                      if k not in init_keys})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params))
        log.info("Submitted SLURM jobs %s", ", ".join(j.job_id for j in jobs))
        self._wait(jobs)
        return [self._result(job, num, list(overrides), sweep_dir)
                for job, (overrides, _, num, _, _) in zip(jobs, job_params)]

    @staticmethod
    def _wait(jobs: list) -> None:
        said: dict[str, str] = {}
        last = 0.0
        while not all(j.done() for j in jobs):
            if time.time() - last >= PENDING_CHECK_S:
                last = time.time()
                for job in jobs:
                    reason = _pending_reason(job.job_id)
                    if reason and said.get(job.job_id) != reason:
                        log.warning("SLURM job %s is pending: %s", job.job_id, reason)
                        said[job.job_id] = reason
            time.sleep(1.0)

    def _result(self, job, num: int, overrides: list[str], sweep_dir: Path) -> JobReturn:
        try:
            return job.results()[0]
        except Exception as exc:  # noqa: BLE001 - a lost job is a row, the sweep goes on
            status, error = _why_lost(job, exc)
            log.error("SLURM job %s (job %d) returned no result: %s", job.job_id, num, error)
            return lost_job(sweep_dir, num, overrides, status, error)


def _pending_reason(job_id: str) -> str | None:
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True, text=True,
                             timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    states = [line.split("|") for line in out if "|" in line]
    return next((reason for state, reason in states if state == "PENDING" and reason != "None"), None)
