"""``hydra/launcher=local`` (conf/hydra/launcher/local.yaml): Hydra's submitit launcher on this
machine, each job a submitit job (a process of its own, as on SLURM), where a job that returns no
result is a row of the summary (experiments/sweeps/lost_jobs.py) instead of Hydra's traceback on the
first one. Its jobs are submitted one by one (the plugin's submission code, repeated: it collects
every result in one expression, with no hook between submitting and waiting), so that a search
can start each trial as a slot frees (``job_session``); the launcher class itself is declared in
hydra_plugins/lightning_hydra_lab/local_launcher.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from experiments.sweeps.hydra_internals import submitit_executor
from experiments.sweeps.lost_jobs import lost_job
from experiments.sweeps.submitit_session import SubmititSession
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

log = logging.getLogger(__name__)


class LocalBehaviour:
    """Mixed into Hydra's submitit local launcher by hydra_plugins/lightning_hydra_lab."""

    config: Any
    params: dict[str, Any]

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        session = self.job_session()
        waits = [session.submit(idx, list(overrides)) for idx, overrides in enumerate(job_overrides, start=initial_job_idx)]
        return [wait() for wait in waits]

    def job_session(self) -> _Session:
        """Jobs submitted one at a time (a search starts each as a slot frees: experiments/sweeps/job_stream.py)."""
        import submitit

        assert self.config is not None
        params = dict(self.params)
        init_keys = {"max_num_timeout", "submitit_folder"}
        executor = submitit.AutoExecutor(cluster=submitit_executor(self), folder=params["submitit_folder"])
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{submitit_executor(self)}_{k}": v for k, v in params.items()
                                      if k not in init_keys})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Submitit '%s' sweep output dir : %s", submitit_executor(self), sweep_dir)
        return _Session(self, executor, sweep_dir)

    @staticmethod
    def _result(job: Any, num: int, overrides: list[str], sweep_dir: Path) -> JobReturn:
        from submitit.core.utils import UncompletedJobError

        job.wait()
        try:
            if not job.paths.result_pickle.exists():  # written before its process ends: there is none
                raise UncompletedJobError(f"job {job.job_id} has no result")  # (results() would wait 15 s more)
            return job.results()[0]
        except Exception as exc:  # noqa: BLE001 - a lost job is a row, the sweep goes on
            error = _why_lost(job, exc)
            log.error("Job %d (submitit job %s) returned no result: %s", num, job.job_id, error)
            return lost_job(sweep_dir, num, overrides, "failed", error)


class _Session(SubmititSession):
    """Jobs of submitit's local executor, each waited for with ``job.wait()`` in ``_result``."""


def _why_lost(job: Any, exc: Exception) -> str:
    """submitit's local controller keeps no exit code: a job with no result was killed by a
    signal or crashed; a job whose Python code raised past Hydra has its error's last line."""
    from submitit.core.utils import FailedJobError

    if isinstance(exc, FailedJobError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = next((line for line in reversed(lines) if "Error" in line or "Exception" in line), lines[-1])
        return f"submitit job {job.job_id} raised {cause}"[:500]
    return (f"submitit job {job.job_id} ended without a result: its process was killed (SIGKILL: out of memory?) "
            f"or crashed; its output: {job.paths.stderr}")
