"""Time to accuracy: the real command ``python experiments/run.py experiment=<recipe>`` as a
subprocess. Wall time from launch to exit (start-up, data, training, test all included), the
final test accuracy, and when the validation accuracy first reached the recipe's target (read
from the TensorBoard events the run writes, whose wall-clock stamps share the launch's clock).

Each command's wall time is also given in reference epochs (benchmarks/reference.py), timed just
before it, and targets are set in those units; ``seeds`` runs each recipe with that many seeds
(the config's own seed, then the next ones).

Beside it, the baseline: the same recipe (net, optimizer, schedule, augmentation, epochs,
validation every epoch, then the test split with the recipe's test-time augmentation) trained by
the plain loop of benchmarks/plain.py in this process, timed against the framework's own fit +
test time (``time/total_s``); with several seeds, for the first seed only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, PlainSetup, compose_run, sync
from benchmarks.plain import evaluate, plain_epoch
from benchmarks.reference import reference_epoch_s

# recipe -> (test accuracy target, budget in reference epochs for the whole command), from
# issue 21. The seed recipe has none: its row shows what the tutorial's settings reach here (the
# tutorial reported 83.3%, measured on its training set: compare the train acc column).
RECIPES: dict[str, tuple[float | None, float | None]] = {
    "fashion_seed": (None, None),
    "fashion_fast": (0.91, 9.0),
    "fashion_best": (0.945, 100.0),
}
# recipe -> (lowest mean of the seeds' test accuracies, lowest single seed's), from issue 21; the
# first seed, the recipe's own (what the command without seed= gives), must reach the target itself.
SEED_TARGETS: dict[str, tuple[float | None, float]] = {
    "fashion_fast": (None, 0.907),
    "fashion_best": (0.943, 0.940),
}


def read_scalars(run_dir: Path) -> dict[str, list[tuple[float, int, float]]]:
    """``{tag: [(wall_time, step, value), ...]}`` from the run's TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[float, int, float]]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            scalars.setdefault(tag, []).extend((e.wall_time, e.step, e.value) for e in acc.Scalars(tag))
    return scalars


def metrics_from_log(text: str) -> dict[str, float]:
    """The ``Metrics: {...}`` line experiments/pipeline.py logs at the end of a run."""
    found = re.findall(r"Metrics: (\{.*\})", text)
    try:
        return ast.literal_eval(found[-1]) if found else {}
    except (ValueError, SyntaxError):
        return {}


def plain_recipe(recipe: str, device: str = "cpu", seed: int | None = None) -> dict[str, float]:
    """The recipe by the plain loop: loading the data (as the framework's fit does), fit (with
    validation each epoch) and test, timed together."""
    setup = PlainSetup([f"experiment={recipe}", *([f"seed={seed}"] if seed is not None else [])], device)
    net, optimizer, loss_fn, predict = setup.build()
    scheduler, interval = setup.scheduler(optimizer)
    started = time.perf_counter()
    for epoch in range(setup.epochs):
        record = plain_epoch(net, optimizer, loss_fn, setup.train, setup.val, setup.batch_size,
                             setup.eval_batch_size, transform=setup.transform, predict=predict,
                             sync=lambda: sync(setup.device), augment=setup.augment_for(epoch),
                             scheduler=scheduler if interval == "step" else None)
        if scheduler is not None and interval == "epoch":
            scheduler.step()
    test_acc = evaluate(net, loss_fn, setup.test, setup.eval_batch_size, setup.transform, predict, setup.tta)
    return {"plain_fit_s": time.perf_counter() - started + setup.data_setup_s, "plain_test_acc": test_acc,
            "plain_val_acc": record["val_acc"]}


def run_recipe(recipe: str, extra: list[str] | None = None, plain: bool = True, device: str = "cpu",
               log=print, seed: int | None = None) -> dict[str, Any]:
    target, budget = RECIPES[recipe]
    reference = reference_epoch_s(device)
    log(f"reference epoch: {reference:.2f} s")
    extra = [*(extra or []), *([f"seed={seed}"] if seed is not None else [])]
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{recipe}-"))
    cmd = [sys.executable, "experiments/run.py", f"experiment={recipe}", f"hydra.run.dir={run_dir}", *extra]
    log(f"time-to-accuracy: {' '.join(cmd[1:])}")
    launched = time.time()
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{recipe} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    scalars = read_scalars(run_dir)
    log_metrics = metrics_from_log(done.stdout)
    test_acc = scalars["test/acc"][-1][2] if scalars.get("test/acc") else log_metrics.get("test/acc")
    val = sorted(scalars.get("val/acc", []))
    reached = next((w - launched for w, _, v in val if v >= target), None) if target else None
    first_val = val[0][0] - launched if val else None
    fit_s = log_metrics.get("time/total_s")
    row = {
        "recipe": recipe,
        "command": " ".join(["python experiments/run.py", f"experiment={recipe}", *extra]),
        "seed": seed,
        "wall_s": wall,
        "reference_epoch_s": reference,
        "wall_reference_epochs": wall / reference,
        "framework_fit_s": fit_s,
        "test_acc": test_acc,
        "target_acc": target,
        "budget_reference_epochs": budget,
        "train_acc": log_metrics.get("train/acc"),
        "ok": None if target is None else bool(test_acc is not None and test_acc >= target
                                                and wall / reference <= budget),
        "val_target_reached_s": reached,
        "first_val_s": first_val,
        "epochs": len(val),
        "val_acc": [v for _, _, v in val],
        "val_acc_at_s": [w - launched for w, _, _ in val],
    }
    log(f"time-to-accuracy {recipe}: {wall:.1f} s wall = {wall / reference:.1f} reference epochs, "
        f"fit + test {fit_s} s, test/acc {test_acc}")
    row.update({"plain_fit_s": None, "plain_test_acc": None, "fit_ratio": None})
    if plain:
        row.update(plain_recipe(recipe, device, seed))
        if fit_s:
            row["fit_ratio"] = fit_s / row["plain_fit_s"]
        log(f"time-to-accuracy {recipe} plain loop: fit + test {row['plain_fit_s']:.1f} s, "
            f"test acc {row['plain_test_acc']:.4f}")
    return row


def run(recipes: list[str] | None = None, extra: list[str] | None = None, plain: bool = True, device: str = "cpu",
        log=print, seeds: int | None = None) -> list[dict[str, Any]]:
    """One row per recipe, or with ``seeds``, per recipe and seed (the config's seed and the next ones)."""
    rows = []
    for recipe in recipes or list(RECIPES):
        if seeds is None:
            rows.append(run_recipe(recipe, extra, plain, device, log=log))
            continue
        first = int(compose_run([f"experiment={recipe}", "paths.output_dir=unused"]).seed or 0)
        for n in range(seeds):
            rows.append(run_recipe(recipe, extra, plain and n == 0, device, log=log, seed=first + n))
    return rows


def seed_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recipe run with several seeds: the test accuracies' mean, lowest and highest, the
    commands' reference epochs, and whether issue 21's targets are met."""
    out = []
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        runs = [r for r in rows if r["recipe"] == recipe and r.get("seed") is not None]
        accs = [r["test_acc"] for r in runs if r["test_acc"] is not None]
        if len(runs) < 2 or len(accs) < len(runs):
            continue
        target, budget = RECIPES[recipe]
        lowest_mean, lowest_one = SEED_TARGETS.get(recipe, (None, None))
        epochs = [r["wall_reference_epochs"] for r in runs]
        met = None
        if target is not None:
            met = (accs[0] >= target and all(a >= lowest_one for a in accs) and max(epochs) <= budget
                   and (lowest_mean is None or sum(accs) / len(accs) >= lowest_mean))
        out.append({"recipe": recipe, "seeds": [r["seed"] for r in runs], "test_accs": accs,
                    "mean_acc": sum(accs) / len(accs), "min_acc": min(accs), "max_acc": max(accs),
                    "mean_reference_epochs": sum(epochs) / len(epochs), "max_reference_epochs": max(epochs),
                    "target_acc": target, "target_mean_acc": lowest_mean, "target_min_acc": lowest_one,
                    "budget_reference_epochs": budget, "ok": met})
    return out
