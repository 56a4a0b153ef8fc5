"""Scaling: epoch time as the training set grows, framework against the plain loop. Both should
grow linearly in the number of points (constant time per 1000 points); their ratio shows the
framework's fixed per-step cost on models that do almost no work per batch."""

from __future__ import annotations

import tempfile
from typing import Any

from benchmarks.common import PlainSetup, framework_warmup, interleaved, median, plain_epoch_of

# The tiny tutorial models: per-step overhead is all there is to see.
WORKLOADS: dict[str, dict[str, Any]] = {
    "xor": {
        "sizes": [10**3, 10**4, 10**5, 10**6],
        "overrides": lambda n: ["model=xor", "data=xor", f"data.train_size={n}", "data.eval_batch_size=1000"],
    },
    "regression": {
        # y = x + noise, 80% train / 20% validation, linear model, L1 loss, batch 64
        "sizes": [10**2, 10**3, 10**4, 10**5, 10**6],
        "overrides": lambda n: ["model=linear", "data=regression", "data.generator=noisy",
                                f"+data.generator_kwargs.num_samples={n}", "data.eval_batch_size=1000"],
    },
}
COMMON = ["trainer.check_val_every_n_epoch=1", "trainer.num_sanity_val_steps=0"]


def run(repeats: int = 1, device: str = "cpu", max_size: int | None = None, log=print) -> list[dict[str, Any]]:
    rows = []
    workdir = tempfile.mkdtemp(prefix="bench-scaling-")
    for name, spec in WORKLOADS.items():
        for n in spec["sizes"]:
            if max_size is not None and n > max_size:
                continue
            overrides = [*spec["overrides"](n), *COMMON]
            setup = PlainSetup(overrides, device)
            plain_epoch_of(setup, max_steps=5)
            if n == spec["sizes"][0]:
                framework_warmup(overrides, workdir, device)
            runs = interleaved(setup, overrides, workdir, device, repeats)
            plain, framework = ([x["epoch_s"] for x in side] for side in runs)
            train_points = len(setup.train[0])
            p, f = median(plain), median(framework)
            log(f"scaling {name} n={n}: plain {p:.3f} s, framework {f:.3f} s")
            rows.append({
                "workload": name, "points": n, "train_points": train_points,
                "steps": -(-train_points // setup.batch_size), "batch_size": setup.batch_size,
                "plain_epoch_s": p, "framework_epoch_s": f, "ratio": f / p,
                "plain_ms_per_1k": 1e6 * p / train_points,
                "framework_ms_per_1k": 1e6 * f / train_points,
                "repeats": repeats,
            })
    return rows
