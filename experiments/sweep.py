"""Multiruns: a failed job is a row of the report, not the end of the sweep.

- ``run_job(run, cfg)`` is the body of run.py's task function. In a multirun it catches a
  job's exception (Hydra's basic sweeper would stop the sweep, the Optuna sweeper the
  search), returns None so that Optuna records the trial as failed, and writes the job's
  record, ``job.json``, into its folder.
- ``SweepReport`` is a Hydra callback (conf/run.yaml, hydra.callbacks): when a multirun ends
  it gathers the records into ``summary.csv`` and ``summary.md`` in the sweep folder, best
  job first, and prints the best job.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

JOB_FILE = "job.json"


def _hydra_config() -> DictConfig | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _is_multirun(hydra_cfg: DictConfig | None) -> bool:
    from hydra.types import RunMode

    return hydra_cfg is not None and hydra_cfg.get("mode") == RunMode.MULTIRUN


def _is_rank_zero() -> bool:
    # Under SLURM every task runs the whole job; this rank comes from SLURM_PROCID / LOCAL_RANK.
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _first_line(exc: BaseException) -> str:
    """The error's first line; for a wrapped error (Hydra's InstantiationException) its cause's."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def threads_per_job(hydra_cfg: DictConfig | None, cores: int | None = None) -> int | None:
    """Torch threads for one job so that parallel jobs x threads <= cores.

    ``TORCH_NUM_THREADS`` wins; else joblib's ``n_jobs`` shares the cores, submitit's
    ``cpus_per_task`` is taken as is; else None (torch's default: all cores)."""
    if os.environ.get("TORCH_NUM_THREADS"):
        return max(1, int(os.environ["TORCH_NUM_THREADS"]))
    if hydra_cfg is None or not _is_multirun(hydra_cfg):
        return None
    cores = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    launcher = hydra_cfg.launcher
    n_jobs = launcher.get("n_jobs")
    if n_jobs:  # joblib: -1 = one worker per core, -2 = all but one, ...
        workers = n_jobs if n_jobs > 0 else cores + 1 + n_jobs
        return max(1, cores // max(1, workers))
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    return None


def run_job(run: Callable[..., float | None], cfg: DictConfig) -> float | None:
    """Run one job: ``run(cfg, metrics_out=dict)`` returns the monitored metric."""
    hydra_cfg = _hydra_config()
    threads = threads_per_job(hydra_cfg)
    if threads:
        import torch

        torch.set_num_threads(threads)
    if not _is_multirun(hydra_cfg):
        return run(cfg)  # a single run fails loudly, with the full traceback

    record: dict[str, Any] = {
        "job": int(hydra_cfg.job.num),
        "overrides": list(hydra_cfg.overrides.task),
        "status": "ok",
        "error": None,
        "pid": os.getpid(),
        "torch_threads": threads,
        "started": time.time(),
    }
    metrics: dict[str, Any] = {}
    value: float | None = None
    try:
        value = run(cfg, metrics_out=metrics)
    except Exception as exc:  # noqa: BLE001 - any failure of one job is that job's row
        log.exception("Job %s failed; the sweep goes on", record["job"])
        record.update(status="failed", error=_first_line(exc))
    monitor = cfg.get("monitor") or {}
    record.update(
        ended=time.time(),
        monitor=monitor.get("metric"),
        mode=monitor.get("mode"),
        objective=None if value is None or math.isnan(value) else float(value),
        metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
        checkpoint=metrics.get("best_model_path") or None,
    )
    record["wall_s"] = round(record["ended"] - record["started"], 3)
    if record["status"] == "ok" and record["objective"] is None:
        # Optuna records a NaN (or missing) objective as a failed trial; so does the report.
        record.update(status="failed", error=f"{record['monitor']} is NaN or was never logged")
    if _is_rank_zero():
        write_record(Path(cfg.paths.output_dir), record)
    # None, not NaN: the Optuna plugin records a None as a failed trial, but crashes on a NaN
    # (it tells FAIL together with the NaN value, which Optuna refuses).
    return record["objective"]


def _write_atomic(path: Path, text: str) -> None:
    """Parallel jobs read and rewrite these files: never let one see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_record(job_dir: Path, record: dict[str, Any]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(job_dir / JOB_FILE, json.dumps(record, indent=2, default=str))


def load_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job record under sweep_dir (sub-folders too: an Optuna study keeps one sweep
    folder per invocation), each with ``dir``, its folder relative to sweep_dir."""
    records = []
    for path in sorted(Path(sweep_dir).rglob(JOB_FILE)):
        record = json.loads(path.read_text())
        record["dir"] = str(path.parent.relative_to(sweep_dir))
        records.append(record)
    return records


def rank_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first by the optimised metric (its mode from the jobs); failed jobs last."""
    modes = [r.get("mode") for r in records if r.get("objective") is not None]
    sign = -1.0 if (modes[0] if modes else "min") == "max" else 1.0

    def key(r: dict[str, Any]) -> tuple:
        objective = r.get("objective")
        ok = r.get("status") == "ok" and objective is not None
        return (not ok, sign * objective if ok else 0.0, r.get("started") or 0.0)

    return sorted(records, key=key)


def _metric_columns(records: list[dict[str, Any]]) -> list[str]:
    names = {k for r in records for k in (r.get("metrics") or {})}
    order = {"val": 0, "test": 1, "train": 2}
    return sorted(names, key=lambda n: (order.get(n.split("/")[0], 3), n))


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """summary.csv (every metric) and summary.md (val/ and test/ metrics) in sweep_dir."""
    sweep_dir = Path(sweep_dir)
    records = rank_records(load_records(sweep_dir))
    metrics = _metric_columns(records)
    fixed = ["rank", "dir", "status", "error", "overrides", "monitor", "objective", "wall_s"]
    rows = []
    for i, r in enumerate(records, 1):
        row = {
            "rank": i, "dir": r["dir"], "status": r.get("status"), "error": r.get("error") or "",
            "overrides": " ".join(r.get("overrides") or []), "monitor": r.get("monitor") or "",
            "objective": r.get("objective"), "wall_s": r.get("wall_s"),
        }
        row.update({m: (r.get("metrics") or {}).get(m) for m in metrics})
        rows.append(row)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fixed + metrics)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(sweep_dir / "summary.csv", table.getvalue())

    # The table shows what differs between jobs; what all share is said once above it.
    common = set.intersection(*(set(r.get("overrides") or []) for r in records)) if records else set()
    shown = [m for m in metrics if m.startswith(("val/", "test/"))]
    header = ["#", "job", "status", "overrides", "objective", *shown, "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, r in zip(rows, records):
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['error']}"
        own = " ".join(o for o in r.get("overrides") or [] if o not in common)
        cells = [row["rank"], row["dir"], status, own, _fmt(row["objective"]),
                 *[_fmt(row[m]) for m in shown], _fmt(row["wall_s"])]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    monitor = next((r["monitor"] for r in rows if r["monitor"]), "the monitored metric")
    shared = " ".join(o for o in (records[0].get("overrides") or []) if o in common) if records else ""
    title = (f"# Sweep {sweep_dir}\n\n{len(rows)} jobs, best {monitor} first."
             f"\n\nEvery job: `{shared or '(no common overrides)'}`\n\n")
    _write_atomic(sweep_dir / "summary.md", title + "\n".join(lines) + "\n")
    return rows


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
        """Record a job that failed outside run_job (its exception reached Hydra), then
        refresh the summary, so that a sweep cut short (Ctrl-C, a time limit) still has one."""
        hydra_cfg = config.hydra
        if not _is_multirun(hydra_cfg) or not _is_rank_zero():
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
            "error": _first_line(job_return._return_value) if failed else None,
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
            lines.append(f"Failed job: {sweep_dir / r['dir']}  {r['error']}  [{r['overrides']}]")
        # print, not log: after a multirun the log file handler still points into the last job's folder
        print("\n".join(lines), flush=True)


def continuing_tpe_sampler(seed: int | None = None, **kwargs: Any):
    """TPE whose seed is offset by the trials already in the study.

    The Hydra plugin builds a fresh sampler on every invocation, so a continued study with a
    fixed seed would repeat the first invocation's random start-up draws. Offsetting the seed
    by the number of the first trial it samples keeps a new study exactly as seeded and a
    continued one deterministic, without repeats."""
    import numpy as np
    import optuna

    class ContinuingTPESampler(optuna.samplers.TPESampler):
        _offset: int | None = None

        def infer_relative_search_space(self, study, trial):  # the first call for each new trial
            if self._offset is None:
                self._offset = trial.number
                if seed is not None and self._offset:
                    self._rng = np.random.RandomState(seed + self._offset)
                    self._random_sampler = optuna.samplers.RandomSampler(seed=seed + self._offset)
            return super().infer_relative_search_space(study, trial)

    return ContinuingTPESampler(seed=seed, **kwargs)

