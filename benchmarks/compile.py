"""torch.compile on the recipes' nets: median training-step time eager and compiled (default
mode, inductor), and how long the first compiled steps take. Decides whether a recipe should set
``model.compile=true`` on this machine: only if the steps saved over a run outweigh the compile."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch

from benchmarks.common import PlainSetup, median, sync

CASES: dict[str, list[str]] = {
    "fashion_fast": ["experiment=fashion_fast"],
    "fashion_best": ["experiment=fashion_best"],
}


def step_times(net, optimizer, loss_fn, x, y, steps: int, device: torch.device) -> list[float]:
    times = []
    for _ in range(steps):
        sync(device)
        started = time.perf_counter()
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def run(steps: int = 20, device: str = "cpu", log=print) -> list[dict[str, Any]]:
    # A first run compiles from scratch: inductor's on-disk cache from earlier runs would hide that.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-inductor-")
    rows = []
    for name, overrides in CASES.items():
        setup = PlainSetup(overrides, device)
        x_all, y_all = setup.train
        x, y = setup.transform(x_all[: setup.batch_size]), y_all[: setup.batch_size]
        measured = {}
        for mode in ("eager", "compiled"):
            net, optimizer, loss_fn, _ = setup.build()
            if mode == "compiled":
                torch._dynamo.reset()
                net = torch.compile(net)
            first = sum(step_times(net, optimizer, loss_fn, x, y, 3, setup.device))  # compiles, warms up
            measured[mode] = (median(step_times(net, optimizer, loss_fn, x, y, steps, setup.device)), first)
        (eager, _), (compiled, compile_s) = measured["eager"], measured["compiled"]
        steps_per_run = -(-len(x_all) // setup.batch_size) * setup.epochs
        saved_s = (eager - compiled) * steps_per_run
        log(f"compile {name}: eager {1e3 * eager:.1f} ms/step, compiled {1e3 * compiled:.1f} ms/step, "
            f"first steps {compile_s:.1f} s")
        rows.append({
            "case": name, "overrides": " ".join(overrides), "batch_size": setup.batch_size,
            "eager_step_ms": 1e3 * eager, "compiled_step_ms": 1e3 * compiled, "speedup": eager / compiled,
            "compile_s": compile_s, "steps_per_run": steps_per_run, "saved_per_run_s": saved_s,
            "pays": saved_s > compile_s,
        })
    return rows
