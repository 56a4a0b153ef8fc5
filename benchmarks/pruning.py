"""Pruning: the same Optuna search of Fashion-MNIST (``hparams_search=fashion``: an MLP, TPE seeded
1234, 16 trials of 5 epochs, one trial at a time) with its default median pruner and without any
(``hydra.sweeper.pruner=null``), side by side in one run, each the whole command as a subprocess.
Per search: the wall time, the CPU time of the command and its children, the best val/acc, the
trials pruned and the epochs trained; the pruned search's time ratios to the unpruned one and its
best val/acc's distance from it. The machine's load average is recorded at each search's start and
end: wall times on a shared machine are provisional (the CPU-time ratio moves much less with
what else runs)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, median

TRIALS, EPOCHS = 16, 5
SEARCH = ["-m", "hparams_search=fashion", f"hydra.sweeper.n_trials={TRIALS}", f"trainer.max_epochs={EPOCHS}",
          "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
CASES = {"no pruning": ["hydra.sweeper.pruner=null"], "median pruner (default)": []}
# The bar: within 0.5 points of the unpruned search's best val/acc, in at most half its time.
MAX_ACC_GAP, MAX_TIME_RATIO = 0.005, 0.5


def search_once(case: str, workdir: Path, repeat: int) -> dict[str, Any]:
    import optuna

    name = f"{'pruned' if CASES[case] == [] else 'unpruned'}_{repeat}"
    cmd = [sys.executable, "experiments/run.py", *SEARCH, *CASES[case], f"hydra.sweeper.study_name={name}",
           f"paths.log_dir={workdir}"]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    study_dir = workdir / "train" / "optuna" / name
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}")
    records = [json.loads((Path(t.user_attrs["job_dir"]) / "job.json").read_text()) for t in study.trials]
    epochs = [int(r["pruned"]["epoch"]) + 1 if r.get("pruned") else EPOCHS for r in records]
    return {"case": case, "wall_s": wall, "cpu_s": cpu, "best_val_acc": study.best_value, "trials": len(study.trials),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            "epochs": sum(epochs), "load_start": load_before, "load_end": os.getloadavg()[0],
            "command": " ".join(["python experiments/run.py", *SEARCH, *CASES[case]])}


def run(repeats: int = 1, log=print) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-pruning-"))
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    order = list(CASES)
    for r in range(repeats):  # alternating, so that a busier spell of the machine hits both
        for case in (order if r % 2 == 0 else order[::-1]):
            runs[case].append(search_once(case, workdir, r))
            x = runs[case][-1]
            log(f"pruning {case} #{r}: {x['wall_s']:.0f} s ({x['cpu_s']:.0f} s CPU), best val/acc {x['best_val_acc']:.4f}, "
                f"{x['pruned']} pruned, load {x['load_start']:.1f}-{x['load_end']:.1f}")
    base = runs["no pruning"]
    rows = []
    for case, results in runs.items():
        ratios = [x["wall_s"] / b["wall_s"] for x, b in zip(results, base)]
        cpu_ratios = [x["cpu_s"] / b["cpu_s"] for x, b in zip(results, base)]
        gaps = [b["best_val_acc"] - x["best_val_acc"] for x, b in zip(results, base)]
        row = {"case": case, "command": results[0]["command"], "repeats": repeats,
               "wall_s": median([x["wall_s"] for x in results]), "cpu_s": median([x["cpu_s"] for x in results]),
               "cpu_ratio": median(cpu_ratios),
               "best_val_acc": median([x["best_val_acc"] for x in results]),
               "pruned": median([x["pruned"] for x in results]), "epochs": median([x["epochs"] for x in results]),
               "trials": results[0]["trials"], "time_ratio": median(ratios), "acc_gap": median(gaps),
               "load": f"{min(x['load_start'] for x in results):.1f}-{max(x['load_end'] for x in results):.1f}",
               "runs": results}
        row["ok"] = None if case == "no pruning" else (row["time_ratio"] <= MAX_TIME_RATIO and row["acc_gap"] <= MAX_ACC_GAP)
        rows.append(row)
    return rows
