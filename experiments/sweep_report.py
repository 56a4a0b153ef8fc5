"""The Hydra callback (conf/run.yaml, hydra.callbacks) that turns a multirun's job records
into its summary, prints the best and the failed jobs, and makes the exit code tell."""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments.records import write_record, write_summary
from experiments.run_folder import JOB_FILE, first_line, is_multirun, is_rank_zero

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """Hydra callback: per-job records, and the sweep's summary when a multirun ends.

    report_dir: where to gather records and write the summary; default the sweep folder
    (an Optuna search points it at the study folder, which holds every invocation).
    """

    def __init__(self, report_dir: str | None = None):
        self.report_dir = report_dir
        self._started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # An SQLite study lives beside the sweep folders; SQLite does not create folders.
        storage = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
        if isinstance(storage, str) and storage.startswith("sqlite:///"):
            Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Record a job that failed before its RunFolder started (its exception reached Hydra), then
        refresh the summary, so that a sweep cut short (Ctrl-C, a time limit) still has one."""
        hydra_cfg = config.hydra
        if not is_multirun(hydra_cfg) or not is_rank_zero():
            return
        job_dir = Path(hydra_cfg.runtime.output_dir)
        if not (job_dir / JOB_FILE).exists():
            self._record_hydra_failure(hydra_cfg, job_dir, job_return)
        try:
            write_summary(self.report_dir or hydra_cfg.sweep.dir)
        except OSError as exc:  # the final summary (on_multirun_end) will try again
            log.warning("Could not update the sweep summary: %s", exc)

    def _record_hydra_failure(self, hydra_cfg: DictConfig, job_dir: Path, job_return: Any) -> None:
        from hydra.core.utils import JobStatus

        failed = job_return.status == JobStatus.FAILED
        value = None if failed else job_return._return_value
        write_record(job_dir, {
            "job": int(hydra_cfg.job.num), "overrides": list(job_return.overrides or []),
            "status": "failed" if failed else "ok",
            "error": first_line(job_return._return_value) if failed else None,
            "started": self._started, "ended": time.time(), "wall_s": round(time.time() - self._started, 3),
            "objective": value if isinstance(value, (int, float)) and math.isfinite(value) else None,
            "metrics": {},
        })

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(self.report_dir or config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        failed = [r for r in rows if r["status"] != "ok"]
        lines = [f"Sweep summary: {sweep_dir / 'summary.md'} ({len(rows)} jobs, {len(failed)} failed)"]
        if rows and rows[0]["status"] == "ok":
            best = rows[0]
            lines.append(f"Best job: {sweep_dir / best['dir']}  {best['monitor']}={best['objective']:.6g}"
                         f"  [{best['overrides']}]")
        for r in failed:
            lines.append(f"{r['status'].capitalize()} job: {sweep_dir / r['dir']}  {r['error']}  [{r['overrides']}]")
        # print, not log: after a multirun the log file handler still points into the last job's folder
        print("\n".join(lines), flush=True)
        if failed:  # after the summary: scripts and CI see that not every job succeeded
            sys.exit(1)
