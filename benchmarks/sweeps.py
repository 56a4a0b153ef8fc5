"""Sweep launchers: the same sweep of short XOR jobs through Hydra's joblib launcher (loky's warm
worker pool) and through ``hydra/launcher=parallel`` (a process per job, forked from a preloaded
fork server), alternating, the whole command timed. What a process per job costs a sweep of
short jobs, where start-up weighs most."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, median

LAUNCHERS = ("joblib", "parallel")
JOBS = ["seed=1,2,3,4,5,6"]  # six jobs, two at a time: three rounds
SWEEP = ["-m", "experiment=xor", "data.train_size=1000", "data.batch_size=32", "model.net.num_hidden=8",
         "trainer.max_epochs=5", "trainer.check_val_every_n_epoch=5", "trainer.accelerator=cpu",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "hydra.launcher.n_jobs=2", *JOBS]


def sweep_once(launcher: str, workdir: Path) -> dict[str, Any]:
    sweep = Path(tempfile.mkdtemp(prefix=f"{launcher}-", dir=workdir))
    cmd = [sys.executable, "experiments/run.py", *SWEEP, f"hydra/launcher={launcher}",
           f"paths.log_dir={workdir}", f"hydra.sweep.dir={sweep}"]
    started = time.time()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    records = [json.loads(p.read_text()) for p in sweep.glob("*/job.json")]
    return {"wall_s": wall, "first_job_s": min(r["started"] for r in records) - started,
            "job_wall_s": median([r["wall_s"] for r in records]), "jobs": len(records)}


def run(repeats: int = 3, log=print) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-sweeps-"))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in LAUNCHERS}
    for r in range(repeats):  # alternating, so that a busier spell of the machine hits both
        for name in (LAUNCHERS if r % 2 == 0 else LAUNCHERS[::-1]):
            runs[name].append(sweep_once(name, workdir))
            log(f"sweeps {name} #{r}: {runs[name][-1]['wall_s']:.1f} s")
    pairs = [p["wall_s"] / j["wall_s"] for j, p in zip(runs["joblib"], runs["parallel"])]
    rows = []
    for name in LAUNCHERS:
        rows.append({"launcher": name, "jobs": runs[name][0]["jobs"], "repeats": repeats,
                     "wall_s": median([x["wall_s"] for x in runs[name]]),
                     "first_job_s": median([x["first_job_s"] for x in runs[name]]),
                     "job_wall_s": median([x["job_wall_s"] for x in runs[name]]),
                     "ratio_to_joblib": 1.0 if name == "joblib" else median(pairs),
                     "all_wall_s": [x["wall_s"] for x in runs[name]]})
    return rows
