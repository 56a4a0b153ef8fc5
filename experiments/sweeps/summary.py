"""A sweep's records: each job's ``job.json`` (written by experiments/runs/folder.py) gathered
into ``summary.csv`` and ``summary.md``, best job first, then the trials an Optuna pruner stopped
(the furthest first, with the epoch each reached), failed and interrupted jobs last."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from experiments.runs.files import write_text_atomic
from experiments.runs.record import JOB_FILE, JobRecord, UnreadableRecord

UNREADABLE = "unreadable"  # the status of a row whose job.json cannot be read


def load_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job record under sweep_dir (sub-folders too: an Optuna study keeps one sweep
    folder per invocation), each with ``dir``, its folder relative to sweep_dir. A record that
    cannot be read is an ``unreadable`` row saying why: the summary still lists every job."""
    records = []
    for path in sorted(Path(sweep_dir).rglob(JOB_FILE)):
        try:
            record = JobRecord.read(path.parent).as_dict()
        except UnreadableRecord as exc:
            why = str(exc)
            record = {"status": UNREADABLE, "objective": None, "metrics": {},
                      "error": f"{JOB_FILE} cannot be read ({why}): the job's outcome is unknown; "
                               "its folder still holds what it wrote"}
        record["dir"] = str(path.parent.relative_to(sweep_dir))
        records.append(record)
    return records


def rank_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first by the optimised metric (its mode from the jobs); then pruned trials, those that
    went furthest first, then by the value they were pruned at; failed jobs last."""
    modes = [r.get("mode") for r in records if r.get("objective") is not None or r.get("pruned")]
    sign = -1.0 if (modes[0] if modes else "min") == "max" else 1.0

    def key(r: dict[str, Any]) -> tuple:
        objective, pruned = r.get("objective"), r.get("pruned") or {}
        if r.get("status") == "ok" and objective is not None:
            return (0, 0, sign * objective, r.get("started") or 0.0)
        if r.get("status") == "pruned":
            value = pruned.get("value")
            return (1, -int(pruned.get("epoch", -1)), sign * value if _is_number(value) else math.inf,
                    r.get("started") or 0.0)
        return (2, 0, 0.0, r.get("started") or 0.0)

    return sorted(records, key=key)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def pruned_at(record: dict[str, Any]) -> str:
    """A pruned trial's row text: ``pruned after epoch 3 (MedianPruner)``."""
    pruned = record.get("pruned") or {}
    return f"pruned after epoch {int(pruned.get('epoch', -1)) + 1} ({pruned.get('pruner', 'its pruner')})"


def _metric_columns(records: list[dict[str, Any]]) -> list[str]:
    names = {k for r in records for k in (r.get("metrics") or {})}
    order = {"val": 0, "test": 1, "train": 2}
    return sorted(names, key=lambda n: (order.get(n.split("/")[0], 3), n))


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """summary.csv (every metric) and summary.md (val/ and test/ metrics) in sweep_dir."""
    sweep_dir = Path(sweep_dir)
    records = rank_records(load_records(sweep_dir))
    metrics = _metric_columns(records)
    fixed = ["rank", "dir", "status", "error", "overrides", "monitor", "objective", "pruned_after_epoch", "wall_s"]
    rows = []
    for i, r in enumerate(records, 1):
        row = {
            "rank": i, "dir": r["dir"], "status": r.get("status"), "error": r.get("error") or "",
            "overrides": " ".join(r.get("overrides") or []), "monitor": r.get("monitor") or "",
            "objective": r.get("objective"), "wall_s": r.get("wall_s"),
            "pruned_after_epoch": int(r["pruned"]["epoch"]) + 1 if r.get("pruned") else None,
        }
        row.update({m: (r.get("metrics") or {}).get(m) for m in metrics})
        rows.append(row)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fixed + metrics)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(sweep_dir / "summary.csv", table.getvalue())

    # The table shows what differs between jobs; what all share is said once above it.
    known = [r for r in records if r.get("status") != UNREADABLE]  # an unreadable record has no overrides
    common = set.intersection(*(set(r.get("overrides") or []) for r in known)) if known else set()
    shown = [m for m in metrics if m.startswith(("val/", "test/"))]
    header = ["#", "job", "status", "overrides", "objective", *shown, "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, r in zip(rows, records):
        status = row["status"] if row["status"] == "ok" else pruned_at(r) if row["status"] == "pruned" else \
            f"{row['status']}: {row['error']}"
        own = " ".join(o for o in r.get("overrides") or [] if o not in common)
        cells = [row["rank"], row["dir"], status, own, _fmt(row["objective"]),
                 *[_fmt(row[m]) for m in shown], _fmt(row["wall_s"])]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    monitor = next((r["monitor"] for r in rows if r["monitor"]), "the monitored metric")
    shared = " ".join(o for o in (known[0].get("overrides") or []) if o in common) if known else ""
    pruned = sum(r["status"] == "pruned" for r in rows)
    ranked = f", then the {pruned} pruned trials (the furthest first)" if pruned else ""
    title = (f"# Sweep {sweep_dir}\n\n{len(rows)} jobs, best {monitor} first{ranked}."
             f"\n\nEvery job: `{shared or '(no common overrides)'}`\n\n")
    write_text_atomic(sweep_dir / "summary.md", title + "\n".join(lines) + "\n")
    return rows


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
