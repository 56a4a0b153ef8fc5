"""Hydra's submitit SLURM launcher, made to behave on a real cluster (hydra/launcher=slurm):

- A request the partition can never satisfy (CPUs, memory, GPUs, time, nodes) fails before
  anything is submitted, naming the request and the partition's limit as ``sinfo`` reports it;
  so do nodes or tasks per node that disagree with the trainer's ``num_nodes`` and ``devices``.
- While the sweep waits, a job that stays pending is reported with SLURM's reason.
- SLURM's warning before the time limit (SIGUSR1 here, ``signal_delay_s`` ahead) makes the job
  save a checkpoint at that step (lightning_modules/run_guard.py), then submitit requeues it; the
  requeued job resumes in the same folder (experiments/runs/folder.py). After ``max_num_timeout``
  requeues it is a ``timeout`` row. A preemption's SIGTERM saves the checkpoint too; SLURM
  requeues a preempted job itself, and it resumes the same way.
- Every rank of a job dies with it: srun ends the job step when one task exits badly
  (``--kill-on-bad-exit``), the other ranks of a stopped run leave the requeue or the timeout to
  rank 0, and a multi-node job whose first node's name does not resolve fails at once (DDP's
  ranks meet there) instead of waiting 30 minutes for torch's store.
- A job that SLURM killed, that was cancelled or that lost a rank is a ``failed`` row with
  SLURM's state and the cause (SLURM's own message, the rank that died, or the error raised),
  and the sweep still finishes, writes its summary and exits 1.

``launch`` repeats the plugin's submission code (it has no hook between submitting and waiting);
tests/test_slurm.py runs it against a real two-node cluster. The launcher class itself is
declared in hydra_plugins/lightning_hydra_lab/slurm_launcher.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from experiments.runs import checkpoints
from experiments.runs.naming import sweep_job_dir
from experiments.sweeps.hydra_internals import stored_outcome, submitit_executor
from experiments.sweeps.lost_jobs import lost_job
from experiments.sweeps.submitit_session import SubmititSession
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

# submitit reads this when it is imported: SLURM then sends SIGUSR1, the signal a run stops at
# with a checkpoint, before the time limit (submitit's own default, USR2, would stop it mid-step).
os.environ.setdefault("SUBMITIT_PREEMPT_SIGNAL", "USR1")

log = logging.getLogger(__name__)
PENDING_CHECK_S = 10.0  # how often squeue is asked why a job waits; a reason is said once
# One task that exits badly ends the job step: the other DDP ranks would wait for it (30 minutes).
SRUN_ARGS = ["--kill-on-bad-exit=1"]
RANK_ZERO_GRACE_S = 60.0  # how long other ranks of a stopped run wait for rank 0 to end the job
# How long a result file may take to show on a shared file system once SLURM says the job ended
# (submitit waits as long, but for each task of each job in turn).
RESULTS_GRACE_S = 15.0


class SlurmRequestError(ValueError):
    pass


class SlurmNodeNameError(RuntimeError):
    pass


def _sinfo(partition: str | None) -> list[dict[str, str]]:
    """sinfo's rows: nodes of the same partition and resources are one row (``nodes`` of them);
    ``job_nodes`` is the partition's job size in nodes (``1-infinite``)."""
    fields = "%P|%c|%m|%G|%l|%D|%s"
    args = ["sinfo", "-h", "-o", fields] + (["-p", partition] if partition else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    rows = [dict(zip(("partition", "cpus", "memory_mb", "gres", "time", "nodes", "job_nodes"), line.split("|")))
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


def _count(value: str) -> float:
    """sinfo's 2, 2+ or infinite; of a range (1-infinite) its upper end."""
    value = value.rpartition("-")[2].rstrip("+")
    return float("inf") if value in ("infinite", "UNLIMITED", "") else float(value)


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
    wanted = {  # per node: (asked, the setting, sinfo's value of a row, unit)
        "CPUs": (int(params.get("cpus_per_task") or 1) * tasks,
                 f"hydra.launcher.cpus_per_task={params.get('cpus_per_task')} x tasks_per_node={tasks}",
                 lambda r: _count(r["cpus"]), ""),
        "memory": (float(params.get("mem_gb") or 0), f"hydra.launcher.mem_gb={params.get('mem_gb')}",
                   lambda r: _count(r["memory_mb"]) / 1024, " GB"),
        "GPUs": (int(params.get("gpus_per_node") or 0), f"hydra.launcher.gpus_per_node={params.get('gpus_per_node')}",
                 lambda r: _gpus(r["gres"]), ""),
        "minutes": (float(params.get("timeout_min") or 0), f"hydra.launcher.timeout_min={params.get('timeout_min')}",
                    lambda r: _minutes(r["time"]), ""),
    }
    for what, (asked, setting, offered, unit) in wanted.items():
        limit = max(offered(r) for r in rows)
        if asked > limit:
            per = "per job" if what == "minutes" else "per node"
            raise SlurmRequestError(
                f"{setting} asks for {asked:g}{unit} {what} {per}, but partition {name} offers at most "
                f"{limit:g}{unit} (sinfo); the job would wait forever. Lower the request "
                f"(or, for GPUs, use trainer=cpu) or pick another partition with hydra.launcher.partition=...")
    nodes = int(params.get("nodes") or 1)
    total = sum(int(_count(r["nodes"])) for r in rows)
    fitting = sum(int(_count(r["nodes"])) for r in rows if all(asked <= offered(r) for asked, _, offered, _ in
                                                               wanted.values()))
    limit = min(fitting, *(_count(r["job_nodes"]) for r in rows))  # the partition's MaxNodes
    if nodes > limit:
        which = "nodes" if fitting == total else "nodes that fit the request"
        raise SlurmRequestError(
            f"hydra.launcher.nodes={nodes} (trainer.num_nodes) asks for {nodes} nodes, but partition {name} offers "
            f"at most {limit:g} {which} (sinfo); the job would wait forever. Lower trainer.num_nodes or pick "
            f"another partition with hydra.launcher.partition=...")


def check_shape(params: dict[str, Any], trainer: Any, job_overrides: Sequence[Sequence[str]]) -> None:
    """Raise ``SlurmRequestError`` when the job's nodes or tasks per node disagree with the
    trainer's ``num_nodes`` or ``devices`` (Lightning would refuse the job once it runs): set
    explicitly apart, or swept (one job array has one shape for all its jobs)."""
    if trainer is None:
        return
    pairs = {"num_nodes": ("nodes", int(params.get("nodes") or 1)),
             "devices": ("tasks_per_node", int(params.get("tasks_per_node") or 1))}
    for key, (launcher_key, asked) in pairs.items():
        value = trainer.get(key)
        if isinstance(value, int) and value != asked:
            raise SlurmRequestError(
                f"hydra.launcher.{launcher_key}={asked} but trainer.{key}={value}: Lightning runs one rank per task "
                f"and would refuse the job. Leave hydra.launcher.{launcher_key} unset (it follows trainer.{key}).")
        for num, overrides in enumerate(job_overrides):
            swept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == f"trainer.{key}"]
            if swept and swept[0].split("=", 1)[-1] != str(asked):
                raise SlurmRequestError(
                    f"job {num} sets {swept[0]}, but one SLURM job array has one shape: every job gets "
                    f"hydra.launcher.{launcher_key}={asked}. Run one sweep per trainer.{key}.")


def _why_lost(job: Any, exc: Exception, resumable: bool = True) -> tuple[str, str]:
    """(status, error) for a job that returned no result, from submitit's error and SLURM's state;
    ``resumable``: its run saved a checkpoint."""
    text = str(exc)
    # submitit logs the warning in each task; one that came while the task imported torch may end it
    # in whatever error the half-finished import causes later, not in submitit's own.
    warned = any(_WARNED.search(log) for log in _last_attempt_logs(job))
    if "timed-out too many times" in text or job.state == "TIMEOUT" or warned:
        then = ("resume it with resume=<job folder>" if resumable else
                "it came before the run's first checkpoint, so there is nothing to resume; give it a longer "
                "hydra.launcher.timeout_min")
        return "timeout", (f"SLURM job {job.job_id} reached its time limit with no requeue left "
                           f"(hydra.launcher.max_num_timeout); {then}")
    cause = _cause(job, text)
    if cause.endswith(f": {signal.strsignal(signal.SIGUSR1)}"):  # srun's words for a task the warning killed
        return "timeout", (f"SLURM job {job.job_id} got its time-limit warning (SIGUSR1, signal_delay_s before the "
                           "limit) while it was starting, before it could save a checkpoint or be requeued; give it "
                           "a longer hydra.launcher.timeout_min")
    state = job.state if job.state not in ("RUNNING", "PENDING", "UNKNOWN") else "ended"
    return "failed", f"SLURM state {state}: {cause}"[:500]


# submitit's log line in each task that got SLURM's time-limit warning (its SIGUSR1 handler; a
# preemption says "preempted") ...
_WARNED = re.compile(r"Caught signal SIGUSR1 on \S+: this job is timed-out")
# slurmstepd's word on a job it ended (scancel, time limit, node failure, preemption) ...
_JOB_ENDED = re.compile(r"\*\*\* (JOB \S+ ON \S+ CANCELLED AT .*?) \*\*\*")
_REQUEUED = "DUE TO JOB REQUEUE ***"
# ... srun's on each task that ended badly, first the one that died first ...
_TASK_ENDED = re.compile(r"srun: error: (\S+): tasks? ([\d,-]+): (.+)")
# ... and Python's last line of a traceback.
_RAISED = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b.*)$", re.MULTILINE)


def _last_attempt_logs(job: Any) -> list[str]:
    """Each task's stderr since the job's last requeue (SLURM appends to the files across requeues)."""
    return [(job.task(i).stderr() or "").rpartition(_REQUEUED)[2] for i in range(job.num_tasks)]


def _cause(job: Any, text: str) -> str:
    """Why a job ended without a result, in SLURM's or Python's words: the job's end as slurmstepd
    logged it, else the first task srun saw die (with what it raised, if it raised), else the
    last error in submitit's message. Logs are appended to across requeues: the last attempt's."""
    logs = _last_attempt_logs(job)
    ended = [m.group(1) for m in _JOB_ENDED.finditer(logs[0])]  # task 0's log holds the batch script's
    if ended:
        return ended[-1]
    died = _TASK_ENDED.search(logs[0])
    if died:
        node, task, how = died.groups()
        first = int(re.split(r"[,-]", task)[0])
        raised = _RAISED.findall(logs[first]) if first < len(logs) else []
        return f"task {task} on {node}: {how}" + (f"; it raised {raised[-1]}" if raised else "")
    raised = _RAISED.findall(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return raised[-1] if raised else lines[0] if lines else "no output"


class ClusterBehaviour:
    """Mixed into Hydra's submitit SLURM launcher by hydra_plugins/lightning_hydra_lab (Hydra
    takes launchers only from that namespace)."""

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Runs in each task of the SLURM job. A run stopped by the time-limit warning (SIGUSR1)
        has saved its checkpoint (every rank stopped at the same step); submitit's own handler for
        that signal then requeues the job, or, after ``max_num_timeout`` requeues, ends it with an
        error that the sweep records as a timeout. After SIGTERM (``scancel``, or a preemption,
        which SLURM requeues itself) the job ends."""
        from lightning_modules.run_guard import RunInterrupted

        check_root_node_resolves()
        try:
            result = super().__call__(*args, **kwargs)
        except RunInterrupted as stop:
            requeue = signal.getsignal(signal.SIGUSR1)  # submitit's, put back by the run folder
            if stop.signum == signal.SIGUSR1 and callable(requeue):
                requeue(signal.SIGUSR1, None)  # rank 0 requeues (and exits) or raises; other ranks return
            _leave_the_end_to_rank_zero()
            raise
        if result.status is JobStatus.FAILED and _tasks() > 1:
            # Hydra keeps a job's error in its result, and this task would exit 0 while the other
            # ranks wait for it in DDP (30 minutes): raised, it ends the job step (SRUN_ARGS). So
            # does submitit's own "not requeued" error when the time-limit warning came before the
            # run could catch it (while the task still imported torch).
            raise stored_outcome(result)
        return result

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        executor, sweep_dir = self._executor(job_overrides)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*job_params))
        log.info("Submitted SLURM jobs %s", ", ".join(j.job_id for j in jobs))
        self._wait(jobs)
        _wait_for_results(jobs)
        return [self._result(job, num, list(overrides), sweep_dir)
                for job, (overrides, _, num, _, _) in zip(jobs, job_params)]

    def job_session(self) -> _Session:
        """Jobs submitted one by one, each a SLURM job of its own (not one job array), so that a
        search starts each trial as a slot frees (experiments/sweeps/job_stream.py)."""
        return _Session(self, *self._executor([]))

    def _executor(self, job_overrides: Sequence[Sequence[str]]) -> tuple[Any, Path]:
        """submitit's executor for this launcher's parameters, once they are checked against the
        partition and the trainer (bad input: one paragraph, exit 1, nothing submitted)."""
        import submitit

        assert self.config is not None
        params = dict(self.params)
        try:
            check_request(params)
            check_shape(params, self.config.get("trainer"), job_overrides)
        except SlurmRequestError as refused:
            print(refused, file=sys.stderr)
            sys.exit(1)
        init_keys = {"max_num_timeout", "submitit_folder"}
        executor = submitit.AutoExecutor(cluster=submitit_executor(self), folder=params["submitit_folder"],
                                         slurm_max_num_timeout=params.get("max_num_timeout", 0))
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                      if k not in init_keys})
        executor.update_parameters(slurm_srun_args=SRUN_ARGS)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        return executor, sweep_dir

    @staticmethod
    def _wait(jobs: list) -> None:
        said: dict[str, str] = {}
        last = 0.0
        while not all(j.done() for j in jobs):
            if time.time() - last >= PENDING_CHECK_S:
                last = time.time()
                for job in jobs:
                    queued, reason = _queue_state(job.job_id)
                    if reason and said.get(job.job_id) != reason:
                        log.warning("SLURM job %s is pending: %s", job.job_id, reason)
                        said[job.job_id] = reason
                    if queued is False:  # ended, maybe without results: ask sacct now, not at submitit's next poll
                        job.watcher.update()
            time.sleep(1.0)

    def _result(self, job, num: int, overrides: list[str], sweep_dir: Path) -> JobReturn:
        from submitit.core.utils import UncompletedJobError

        try:
            missing = _missing_results(job)
            if not missing:
                return job.results()[0]  # raises the error of the first task that raised, if one did
            raised = (job.task(i).exception() for i in range(job.num_tasks) if i not in missing)
            raise next((e for e in raised if e is not None), None) or UncompletedJobError(
                f"Job {job.job_id} (task: {missing[0]}) has not produced any output (state: {job.state})")
        except Exception as exc:  # noqa: BLE001 - a lost job is a row, the sweep goes on
            last = sweep_job_dir(sweep_dir, num, overrides) / "checkpoints" / checkpoints.LAST
            status, error = _why_lost(job, exc, resumable=last.is_file())
            log.error("SLURM job %s (job %d) returned no result: %s", job.job_id, num, error)
            return lost_job(sweep_dir, num, overrides, status, error)


class _Session(SubmititSession):
    """SLURM jobs: each job's shape checked before it is submitted, its result waited for by polling."""

    def check(self, overrides: list[str]) -> None:
        try:
            check_shape(dict(self.launcher.params), self.launcher.config.get("trainer"), [overrides])
        except SlurmRequestError as refused:
            print(refused, file=sys.stderr)
            sys.exit(1)

    def submitted(self, job: Any, num: int) -> None:
        log.info("Submitted SLURM job %s (job %d)", job.job_id, num)

    def result(self, job: Any, num: int, overrides: list[str]) -> JobReturn:
        self.launcher._wait([job])
        _wait_for_results([job])
        return super().result(job, num, overrides)


def _missing_results(job: Any) -> list[int]:
    """The tasks of a finished job that wrote no result file (each task writes its own)."""
    with contextlib.suppress(OSError):  # a shared file system looks again (as submitit does)
        job.paths.folder.chmod(job.paths.folder.stat().st_mode)
    return [i for i in range(job.num_tasks) if not job.task(i).paths.result_pickle.exists()]


def _wait_for_results(jobs: list) -> None:
    deadline = time.time() + RESULTS_GRACE_S
    while any(_missing_results(job) for job in jobs) and time.time() < deadline:
        time.sleep(1.0)


def check_root_node_resolves() -> None:
    """In a job of several nodes, Lightning's DDP ranks meet at MASTER_ADDR, by default the first
    node of SLURM_NODELIST: a name that does not resolve here would keep every rank waiting for
    torch's store (30 minutes) while the job holds its nodes. Fail at once instead."""
    if int(os.environ.get("SLURM_NNODES") or 1) < 2:
        return
    from lightning.fabric.plugins.environments import SLURMEnvironment

    nodelist = os.environ.get("SLURM_NODELIST", "")
    address = os.environ.get("MASTER_ADDR") or SLURMEnvironment.resolve_root_node_address(nodelist)
    try:
        socket.getaddrinfo(address, None)
    except OSError as exc:
        where = "MASTER_ADDR" if os.environ.get("MASTER_ADDR") else f"the first node of SLURM_NODELIST={nodelist}"
        raise SlurmNodeNameError(
            f"{address!r} ({where}) does not resolve on node {os.environ.get('SLURMD_NODENAME')} ({exc}): "
            "the DDP ranks of a multi-node job meet at that address. Make the nodes' names resolve on every "
            "node (DNS or /etc/hosts), or export MASTER_ADDR=<address of the first node> in hydra.launcher.setup"
        ) from None


def _tasks() -> int:
    """How many tasks (ranks) this SLURM job has."""
    return int(os.environ.get("SLURM_NTASKS") or 1)


def _leave_the_end_to_rank_zero() -> None:
    """Another rank than 0 of a stopped run waits here: rank 0 requeues the job or records its
    timeout, then exits, and srun ends the step (``SRUN_ARGS``). Exiting first, with the signal's
    exit code, would let srun kill rank 0 before it is done."""
    if int(os.environ.get("SLURM_PROCID") or 0) == 0 or _tasks() < 2:
        return
    log.info("Rank %s stopped; rank 0 ends the job", os.environ["SLURM_PROCID"])
    time.sleep(RANK_ZERO_GRACE_S)


def _queue_state(job_id: str) -> tuple[bool | None, str | None]:
    """(whether squeue still lists the job, None if it could not say; why it is pending, if it is)."""
    try:
        proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    states = [line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line]
    listed = bool(states) if proc.returncode == 0 or "Invalid job id" in proc.stderr else None
    return listed, next((reason for state, reason in states if state == "PENDING" and reason != "None"), None)
