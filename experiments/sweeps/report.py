"""The Hydra callback (conf/run.yaml, hydra.callbacks) that turns a multirun's job records
into its summary, prints the best and the failed jobs, and makes the exit code tell; it also
writes what the sweep varies (sweep.json, which names the job folders) and TensorBoard's
HPARAMS experiment at the sweep folder (experiments/runs/hparams.py)."""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments.config.errors import first_line
from experiments.config.hydra_runtime import is_multirun
from experiments.runs.files import held, write_json_atomic
from experiments.runs.folder import is_rank_zero
from experiments.runs.naming import SWEEP_FILE
from experiments.runs.record import JOB_FILE, JobRecord
from experiments.sweeps.hydra_internals import stored_outcome
from experiments.sweeps.summary import load_records, write_summary
from lightning_modules.task_table import EVALUATION_METRICS

log = logging.getLogger(__name__)
LOCK_FILE = ".summary.lock"  # held while the summary is rewritten
# Hydra's own launchers that end a sweep when one job's process dies: theirs, and ours instead.
HYDRA_LAUNCHERS_WITHOUT_ROWS = {
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher": ("hydra/launcher=joblib", "parallel"),
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher": ("hydra/launcher=submitit_local",
                                                                              "local"),
}


def swept_keys(overrides: list[str], sweeper_params: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """What a sweep varies: each swept key with its ``values`` (a list, a range, a choice) or its
    ``interval`` (an Optuna interval), from the command line's sweep overrides and the
    sweeper's ``params`` (Optuna's search space)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    lines = [*(f"{k}={v}" for k, v in (sweeper_params or {}).items()), *overrides]
    swept: dict[str, dict[str, Any]] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        if not override.is_sweep_override():
            continue
        value = override.value()
        if isinstance(value, IntervalSweep):
            spec: dict[str, Any] = {"interval": [value.start, value.end], "log": "log" in value.tags}
        else:
            try:
                spec = {"values": list(override.sweep_iterator())}
            except Exception:  # noqa: BLE001 - glob() needs Hydra's config loader: values unknown
                spec = {"values": []}
        swept[override.key_or_group] = spec  # the command line wins over the config's params
    return swept


class SweepReport(Callback):
    """Hydra callback: per-job records, and the sweep's summary when a multirun ends.

    report_dir: where to gather records and write the summary; default the sweep folder
    (an Optuna search points it at the study folder, which holds every invocation).
    """

    def __init__(self, report_dir: str | None = None):
        self.report_dir = report_dir
        self._started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        target = OmegaConf.select(config, "hydra.launcher._target_", default="")
        if target in HYDRA_LAUNCHERS_WITHOUT_ROWS:
            log.warning("%s: one job that dies (killed, out of memory) ends this whole sweep, without a summary; "
                        "hydra/launcher=%s makes it a failed row and the sweep goes on",
                        *HYDRA_LAUNCHERS_WITHOUT_ROWS[target])
        # Before any job starts: each job's folder is named by its values of these keys.
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        swept = swept_keys(list(config.hydra.overrides.task),
                           OmegaConf.to_container(params, resolve=False) if params else None)
        write_json_atomic(Path(config.hydra.sweep.dir) / SWEEP_FILE, {"swept": swept})

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
        report_dir = Path(self.report_dir or hydra_cfg.sweep.dir)
        try:
            with held(report_dir / LOCK_FILE):
                write_summary(report_dir)
        except Exception as exc:  # noqa: BLE001 - the final summary (on_multirun_end) tries again, and tells
            log.warning("Could not update the sweep summary: %s", exc)

    def _record_hydra_failure(self, hydra_cfg: DictConfig, job_dir: Path, job_return: Any) -> None:
        from hydra.core.utils import JobStatus

        failed = job_return.status == JobStatus.FAILED
        outcome = stored_outcome(job_return)
        value = None if failed else outcome
        JobRecord(job=int(hydra_cfg.job.num), overrides=list(job_return.overrides or []),
                  status="failed" if failed else "ok", error=first_line(outcome) if failed else None,
                  started=self._started, ended=time.time(), wall_s=round(time.time() - self._started, 3),
                  objective=value if isinstance(value, (int, float)) and math.isfinite(value) else None,
                  ).write(job_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The summary over report_dir, the best job and this invocation's failed jobs; exit code 1
        when any job of this invocation (its sweep folder) did not succeed (a pruned trial did). An Optuna study's
        summary lists every trial of every invocation, but another invocation's jobs, still
        running or failed, are that invocation's to report."""
        sweep_dir = Path(config.hydra.sweep.dir)
        report_dir = Path(self.report_dir or sweep_dir)
        if not report_dir.is_dir():
            return
        try:
            with held(report_dir / LOCK_FILE):  # one writer at a time: invocations of a study share it
                rows = write_summary(report_dir)
                try:
                    write_hparams_experiment(report_dir)
                except (OSError, ValueError) as exc:  # the summary tables are written; say why this is not
                    log.warning("Could not write the sweep's TensorBoard hparams experiment: %s", exc)
        except Exception as exc:  # noqa: BLE001 - never a warning that leaves exit code 0
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            rewrite = f"from experiments.sweeps.summary import write_summary; write_summary({str(report_dir)!r})"
            print(f"Could not write the sweep's summary in {report_dir} ({type(exc).__name__}: {exc}). Each "
                  f"job's outcome is in its folder's {JOB_FILE}; fix the cause (disk space, permissions), then "
                  f"write the summary with: python -c {shlex.quote(rewrite)}", file=sys.stderr, flush=True)
            sys.exit(1)
        own = [r for r in rows if _is_under(report_dir / r["dir"], sweep_dir)]
        failed = [r for r in own if r["status"] not in ("ok", "pruned")]  # a pruned trial ended as its search meant
        pruned = sum(r["status"] == "pruned" for r in own)
        counts = f"{len(own)} jobs, {len(failed)} failed" + (f", {pruned} pruned" if pruned else "")
        if len(own) < len(rows):
            counts = f"{len(rows)} jobs in all; this invocation: {counts}"
        lines = [f"Sweep summary: {report_dir / 'summary.md'} ({counts})"]
        if rows and rows[0]["status"] == "ok":
            best = rows[0]
            lines.append(f"Best job: {report_dir / best['dir']}  {best['monitor']}={best['objective']:.6g}"
                         f"  [{best['overrides']}]")
        for r in failed:
            lines.append(f"{r['status'].capitalize()} job: {report_dir / r['dir']}  {r['error']}  [{r['overrides']}]")
        # print, not log: after a multirun the log file handler still points into the last job's folder
        print("\n".join(lines), flush=True)
        if failed:  # after the summary: scripts and CI see that not every job succeeded
            sys.exit(1)


def _is_under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


# Scalars that change every step or are settings, not results to compare runs by.
NOT_COMPARED = ("train/loss_step", "train/lr")


def write_hparams_experiment(sweep_dir: Path) -> Path | None:
    """TensorBoard's HPARAMS experiment at sweep_dir: the swept keys (of every sweep.json under
    it: an Optuna study has one per invocation) first, the jobs' other hparams, every metric."""
    import yaml

    from experiments.runs.hparams import HPARAMS_FILE, write_experiment

    swept: dict[str, dict[str, Any]] = {}
    for path in sorted(sweep_dir.rglob(SWEEP_FILE)):
        for key, spec in json.loads(path.read_text())["swept"].items():
            known = swept.setdefault(key, {**spec, "values": []})
            known["values"] += [v for v in spec.get("values", []) if v not in known["values"]]
    records = load_records(sweep_dir)
    if not records:
        return None
    job_params = []
    for record in records:
        job = sweep_dir / record["dir"]
        found = [p for p in (job / HPARAMS_FILE, job / "csv" / HPARAMS_FILE) if p.is_file()]
        if found:
            job_params.append(yaml.safe_load(found[0].read_text()) or {})
    monitor = next((r["monitor"] for r in records if r.get("monitor")), None)
    names = {m for r in records for m in (r.get("metrics") or {}) if "/" in m and not m.startswith("time/")}
    order = {"val": 0, "test": 1, "train": 2}
    metrics = sorted(names - set(NOT_COMPARED), key=lambda m: (m != monitor, order.get(m.split("/")[0], 3), m))
    # TensorBoard shows one experiment summary for a whole logdir: opened on logs/, a sweep's is
    # the one shown, so it also lists every task's metrics (after the sweep's own), so that the
    # runs of another task show theirs.
    metrics += [m for m in EVALUATION_METRICS if m not in metrics]
    return write_experiment(sweep_dir, swept, job_params, metrics)
