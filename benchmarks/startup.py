"""Start-up: wall time of ``experiments/run.py --help`` and of a whole ``experiment=xor`` run,
with ``import torch, lightning`` as the floor every command pays."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import ROOT, median

COMMANDS: dict[str, list[str]] = {
    "import torch, lightning": [sys.executable, "-c", "import torch, lightning"],
    "run.py --help": [sys.executable, "experiments/run.py", "--help"],
    "run.py experiment=xor": [sys.executable, "experiments/run.py", "experiment=xor"],
}


def time_command(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def run(repeats: int = 3, log=print) -> list[dict[str, Any]]:
    rows = []
    workdir = tempfile.mkdtemp(prefix="bench-startup-")
    for name, cmd in COMMANDS.items():
        walls = []
        for r in range(repeats):
            extra = [f"hydra.run.dir={workdir}/xor_{r}"] if "experiment=xor" in cmd else []
            walls.append(time_command(cmd + extra))
        log(f"startup {name}: {median(walls):.2f} s")
        rows.append({"command": shlex.join(["python", *cmd[1:]]), "name": name, "repeats": repeats,
                     "wall_s": median(walls), "all_s": walls})
    return rows
