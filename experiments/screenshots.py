"""The README's TensorBoard screenshots, made the way a user would see them.

    make screenshots        (or: python experiments/screenshots.py [--out docs] [--logs DIR])

Trains a few small runs (XOR, linear regression, Fashion-MNIST) and a small XOR sweep into a
fresh logs folder, starts a real ``tensorboard`` on it, and shoots its scalars, images and
hparams pages with headless chromium into OUT/tensorboard_{scalars,images,hparams}.png.
Needs Debian's chromium (``make screenshots`` installs it). Takes a few minutes on a CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from experiments.dashboard.tensorboard import TensorBoard, chromium, screenshot
from experiments.runs.record import JOB_FILE, JobRecord

ROOT = Path(__file__).resolve().parents[1]

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]
# Small enough for a few minutes on two cores, long enough that the curves and pictures mean something.
RUNS = {
    "xor": ["experiment=xor", "trainer.max_epochs=30"],
    "linear": ["experiment=linear", "trainer.max_epochs=300"],
    "fashion": ["model=mlp", "data=fashion", "trainer.max_epochs=1"],
    "sweep": ["-m", "experiment=xor", "trainer.max_epochs=15", "model.optimizer.lr=0.05,0.2", "seed=1,2"],
}
# Each page opens on its point: the train and val curves, one picture of each kind, the sweep's columns.
PAGES = {
    "scalars": "/?forceSVG=true#scalars&tagFilter=" + quote("^(train|val)/(loss|acc)$"),
    "images": "/?forceSVG=true#images&tagFilter=" + quote("^val/(decision_boundary|fit|predictions)$"),
    "hparams": "/?forceSVG=true#hparams",
}


def train(logs: Path) -> None:
    """All runs at once (each mostly waits on its own imports and data), each logging to a file."""
    env = {**os.environ, "PROJECT_ROOT": str(ROOT)}
    procs = {}
    logs.mkdir(parents=True, exist_ok=True)
    for name, args in RUNS.items():
        log = open(logs / f"screenshots_{name}.log", "w")
        procs[name] = (subprocess.Popen([sys.executable, "experiments/run.py", *args, *QUIET, f"paths.log_dir={logs}"],
                                        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    failed = []
    try:
        for name, (proc, log) in procs.items():
            proc.wait()
            log.close()
            print(f"{name}: exit code {proc.returncode}", flush=True)
            if proc.returncode:
                failed.append(f"{name} run failed; the end of {log.name}:\n"
                              + Path(log.name).read_text()[-2000:])
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
    if failed:
        raise SystemExit("\n".join(failed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    parser.add_argument("--logs", type=Path, default=None,
                        help="train into this folder and keep it (default: a temporary one); "
                             "a folder that already has runs is shot as it is, without training")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    if chromium() is None:
        raise SystemExit("screenshots.py needs Debian's chromium: `make screenshots` installs it "
                         "(or: apt-get install chromium).")
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        logs = args.logs.resolve() if args.logs else Path(tmp) / "logs"
        if not any(logs.rglob("job.json")):
            started = time.monotonic()
            train(logs)
            print(f"trained in {time.monotonic() - started:.0f} s", flush=True)
        for page, path in PAGES.items():
            # The images page shows the single runs only: one picture of each kind, not one per sweep job.
            with TensorBoard(single_runs(logs) if page == "images" else logs) as tb:
                tb.wait_for_runs({p.parent.relative_to(tb.logdir).as_posix() for p in tb.logdir.rglob("job.json")})
                time.sleep(2 * tb.reload_interval_s)  # and one more pass over the event files
                png = screenshot(tb.url + path, args.out / f"tensorboard_{page}.png", args.width, args.height)
                print(f"{page}: {png}", flush=True)


def single_runs(logs: Path) -> Path:
    """The folder holding the runs that are not sweep jobs (by their job.json), else logs."""
    folders = [str(p.parent) for p in logs.rglob(JOB_FILE) if JobRecord.read(p.parent).job is None]
    return Path(os.path.commonpath(folders)) if len(folders) > 1 else logs


if __name__ == "__main__":
    main()
