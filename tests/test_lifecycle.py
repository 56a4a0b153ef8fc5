"""A run's record through real life, each fault made real in a subprocess: two runs started
together, SIGTERM / SIGINT mid-epoch and resume, resume's one folder and true records, a NaN
loss, a full disk, and the exit codes that tell a scheduler what happened."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from tests.conftest import ROOT
from tests.helpers.preloaded import run_python
from tests.helpers.user_code import user_package

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
XOR = ["experiment=xor", "data.train_size=1000", "data.batch_size=32", "model.net.num_hidden=8"]
# ~2500 steps an epoch: a signal sent after the first epoch's checkpoint lands mid-epoch.
LONG_XOR = ["experiment=xor", "data.train_size=20000", "data.batch_size=8", "trainer.max_epochs=3",
            "trainer.deterministic=true", "test=false"]


def command(*args: str, logs: Path) -> list[str]:
    return [sys.executable, "experiments/run.py", *args, *QUIET, f"paths.log_dir={logs}"]


def env() -> dict[str, str]:
    return {**os.environ, "PROJECT_ROOT": str(ROOT)}


def cli(*args: str, logs: Path, expect: int = 0) -> subprocess.CompletedProcess:
    proc = run_python(command(*args, logs=logs)[1:], cwd=ROOT, env=env(), timeout=300)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def runs(logs: Path, task: str = "train") -> list[Path]:
    return sorted((logs / task / "runs").iterdir())


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (its user + system time): unlike the wall clock, it does
    not run on while other work on the machine holds the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def logged_step(logs: Path) -> int:
    """The last step at which the run under ``logs`` logged ``train/loss_step``, as far as its
    TensorBoard events are written (the loader stops at a record still being written)."""
    steps = [-1]
    for path in logs.rglob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            if any(value.tag == "train/loss_step" for value in event.summary.value):
                steps.append(event.step)
    return max(steps)


def signal_after_first_checkpoint(args: list[str], logs: Path, *signums: int, wait: float = 0.8,
                                  after_step: int | None = None) -> subprocess.CompletedProcess:
    """Start a run; once its first epoch's last.ckpt exists and the run has computed ``wait`` s
    more (so mid-epoch 1), or once it has logged a training step past ``after_step``, send each
    of ``signums``, 50 ms apart (two signals sent at once would merge into one)."""
    proc = subprocess.Popen(command(*args, logs=logs), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(logs.rglob("last.ckpt")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    start = cpu_seconds(proc.pid)
    while after_step is None and cpu_seconds(proc.pid) - start < wait and proc.poll() is None:
        assert time.time() < deadline, "no progress"
        time.sleep(0.05)
    while after_step is not None and logged_step(logs) <= after_step:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    for signum in signums:
        proc.send_signal(signum)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_two_runs_started_together_get_their_own_folders(tmp_path):
    procs = [subprocess.Popen(command(*XOR, "trainer.max_epochs=2", f"seed={seed}", logs=tmp_path), cwd=ROOT,
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for seed in (1, 2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    folders = runs(tmp_path)
    assert len(folders) == 2, "one folder per run, even when both start in the same second"
    printed = {line.split("Output: ")[1].strip() for out in outputs for line in out.splitlines() if "Output: " in line}
    assert printed == {str(f) for f in folders}
    for folder, proc in zip(sorted(folders, key=lambda f: json.loads((f / "job.json").read_text())["pid"]),
                            sorted(procs, key=lambda p: p.pid)):
        record = json.loads((folder / "job.json").read_text())
        assert record["pid"] == proc.pid and record["status"] == "ok"
        assert len(list(folder.glob("events.out.tfevents.*"))) >= 1 and (folder / "checkpoints" / "last.ckpt").is_file()
        seed = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())["seed"]
        assert f"seed={seed}" in record["overrides"], "each folder holds its own run's config"


# 5000 steps an epoch (about 8 s of CPU time), 2 epochs: a wide middle for the signal.
WIDE_EPOCH_XOR = [*LONG_XOR, "data.train_size=40000", "trainer.max_epochs=2"]


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_latest_ends_bit_identical(tmp_path):
    # Once epoch 1 has logged a step past 5500 (its 500th), well before its end at 10000: a
    # time after the first epoch's checkpoint, even in CPU seconds, once fell before epoch 1's
    # first step on a loaded machine.
    stopped = signal_after_first_checkpoint(WIDE_EPOCH_XOR, tmp_path / "a", signal.SIGTERM, after_step=5500)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    (folder,) = runs(tmp_path / "a")
    last = folder / "checkpoints" / "last.ckpt"
    step = torch.load(last, weights_only=True)["global_step"]
    assert f"Run interrupted by SIGTERM at step {step}." in stopped.stderr
    assert f"Checkpoint: {last}" in stopped.stderr
    assert f"Resume with: python experiments/run.py resume={folder}" in stopped.stderr
    assert 5000 < step < 10000, "the checkpoint is of the signal's step, in the middle of epoch 1"
    record = json.loads((folder / "job.json").read_text())
    assert record["status"] == "interrupted" and record["error"].startswith("RunInterrupted")

    resumed = cli(*WIDE_EPOCH_XOR, "resume=latest", logs=tmp_path / "a")
    assert f"Output: {folder}" in resumed.stdout + resumed.stderr and runs(tmp_path / "a") == [folder]
    cli(*WIDE_EPOCH_XOR, logs=tmp_path / "b")  # the same run, never interrupted
    (straight,) = runs(tmp_path / "b")
    a, b = weights(last), weights(straight / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "bit-identical to the uninterrupted run"
    record = json.loads((folder / "job.json").read_text())
    assert record["status"] == "ok" and [s["status"] for s in record["segments"]] == ["interrupted", "ok"]


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGUSR1, 138)], ids=["ctrl-c", "sigusr1"])
def test_ctrl_c_and_sigusr1_save_a_checkpoint_and_exit_128_plus_n(tmp_path, signum, code):
    stopped = signal_after_first_checkpoint(LONG_XOR, tmp_path, signum, after_step=2600)
    assert stopped.returncode == code, stopped.stderr[-3000:]
    (folder,) = runs(tmp_path)
    assert f"Run interrupted by {signal.Signals(signum).name} at step" in stopped.stderr
    assert f"Resume with: python experiments/run.py resume={folder}" in stopped.stderr
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] > 2500


# A signal to the run itself as its first epoch's last training batch starts: that batch is
# the one after which the epoch validates.
SIGNAL_IN_LAST_BATCH = """
import os
from lightning import Callback


class SignalInLastBatch(Callback):
    def __init__(self, signum: int):
        self.signum = signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == trainer.num_training_batches - 1 and not trainer.ckpt_path:
            os.kill(os.getpid(), self.signum)


class SignalInTest(Callback):  # signals as the test's first batch starts; counts the batches that start
    def __init__(self, signum: int, count_to: str):
        self.signum, self.count_to = signum, count_to

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        with open(self.count_to, "a") as count:
            count.write(".")
        if batch_idx == 0:
            os.kill(os.getpid(), self.signum)
"""


THREE_XOR_EPOCHS = [*XOR, "trainer.max_epochs=3", "trainer.deterministic=true", "test=false", "logger=tensorboard"]


@pytest.fixture(scope="module")
def three_epochs_in_one_go(tmp_path_factory) -> Path:
    """The run folder of THREE_XOR_EPOCHS, never interrupted (shared: read only)."""
    logs = tmp_path_factory.mktemp("straight")
    cli(*THREE_XOR_EPOCHS, logs=logs)
    (folder,) = runs(logs)
    return folder


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["sigterm", "sigusr1"])
def test_a_signal_in_an_epochs_last_batch_stops_after_its_validation(signum, three_epochs_in_one_go, tmp_path):
    # Lightning resumes a checkpoint of an epoch's last batch past that epoch's validation, so a
    # stop there would leave the epoch without its validation (its val/acc and its best checkpoint).
    args, straight = THREE_XOR_EPOCHS, three_epochs_in_one_go
    environment = {**env(), **user_package(tmp_path, "stopper", SIGNAL_IN_LAST_BATCH)}
    stopper = ["+callbacks.stop._target_=stopper.SignalInLastBatch", f"+callbacks.stop.signum={int(signum)}",
               "trusted_packages=[stopper]"]
    proc = subprocess.run(command(*args, *stopper, logs=tmp_path / "stopped"), cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    (folder,) = runs(tmp_path / "stopped")
    assert [step for step, _ in scalars(folder, "val/acc")] == [31], "epoch 0 (32 steps) was validated"
    step = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert f"Run interrupted by {signal.Signals(signum).name} at step {step}." in proc.stderr
    assert step == 33, "stopped at the first step after epoch 0's validation"
    resumed = subprocess.run(command(*args, *stopper, f"resume={folder}", logs=tmp_path / "stopped"), cwd=ROOT,
                             env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert scalars(folder, "val/acc") == scalars(straight, "val/acc"), "each epoch validated once, as in one go"
    a, b = weights(folder / "checkpoints" / "last.ckpt"), weights(straight / "checkpoints" / "last.ckpt")
    assert all(torch.equal(a[k], b[k]) for k in b), "the weights of the uninterrupted run"


def test_a_sigterm_during_the_test_stops_it_after_the_current_batch(tmp_path):
    environment = {**env(), **user_package(tmp_path, "stopper", SIGNAL_IN_LAST_BATCH)}
    counted = tmp_path / "test_batches"
    stopper = ["+callbacks.stop._target_=stopper.SignalInTest", f"+callbacks.stop.signum={int(signal.SIGTERM)}",
               f"+callbacks.stop.count_to={counted}", "trusted_packages=[stopper]"]
    proc = subprocess.run(command(*XOR, "trainer.max_epochs=1", "data.test_size=4000", "data.eval_batch_size=8",
                                  *stopper, logs=tmp_path),
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr[-3000:]
    assert len(counted.read_text()) < 10, "the test went on (500 batches) after the signal"
    assert json.loads((runs(tmp_path)[0] / "job.json").read_text())["status"] == "interrupted"


def test_resume_continues_in_one_folder_with_true_records(tmp_path):
    cli(*XOR, "trainer.max_epochs=3", "logger=many", logs=tmp_path)
    (folder,) = runs(tmp_path)
    cli(f"resume={folder}", "trainer.max_epochs=6", logs=tmp_path)
    assert runs(tmp_path) == [folder], "no second folder"
    assert {p.parent for p in tmp_path.rglob("events.out.tfevents.*")} == {folder}, "one TensorBoard run"
    acc = scalars(folder, "val/acc")
    assert len(acc) == 6 and len({s for s, _ in acc}) == 6, "val/acc at each of the 6 epochs, once"
    with open(folder / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["val/acc"]]
    assert [float(r["val/acc"]) for r in rows] == pytest.approx([v for _, v in acc]), "metrics.csv kept its first part"
    best = scalars(folder, "val/acc_best")[-1][1]
    assert best == max(v for _, v in acc), "val/acc_best is the best over all epochs, before and after resume"
    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 6 and config["model"]["net"]["num_hidden"] == 8
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 5 and last["run_config"]["trainer"]["max_epochs"] == 6
    assert last["run_config"]["paths"]["output_dir"] == str(folder)
    record = json.loads((folder / "job.json").read_text())
    first, then = (segment["overrides"] for segment in record["segments"])
    assert "trainer.max_epochs=3" in first and "trainer.max_epochs=6" in then and "trainer.max_epochs=3" not in then
    assert record["status"] == "ok" and record["segments"][1]["resumed_from"] == str(folder / "checkpoints" / "last.ckpt")
    monitored = [v for _, v in scalars(folder, "val/loss")]
    assert record["objective"] == pytest.approx(min(monitored)), "the objective counts every epoch"


def test_resume_refuses_another_model_and_changes_nothing(tmp_path):
    cli(*XOR, "trainer.max_epochs=1", logs=tmp_path)
    (folder,) = runs(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    proc = cli(f"resume={folder}", "model.optimizer.lr=0.5", logs=tmp_path, expect=2)
    assert "model.optimizer.lr=0.5 would change what the checkpoint" in proc.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"} == before
    # A bad value is refused before Hydra writes anything: the run's record and config stay as they were.
    proc = cli(f"resume={folder}", "trainer.max_epochs=abc", logs=tmp_path, expect=1)
    assert "trainer.max_epochs='abc' is not allowed" in proc.stderr and "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"} == before
    # A finished run is refused unless it is given more epochs; its record is left byte for byte.
    proc = cli(f"resume={folder}", logs=tmp_path, expect=2)
    assert f"the run in {folder} finished (1 epochs)" in proc.stderr and "trainer.max_epochs > 1" in proc.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"} == before
    cli(f"resume={folder}", "trainer.max_epochs=2", logs=tmp_path)
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    proc = cli(f"resume={folder}", "trainer.max_epochs=1", logs=tmp_path, expect=2)
    assert "trainer.max_epochs=1 is fewer than the 2 epochs" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("resume=latest", "task_name=nothing_here", logs=tmp_path, expect=2)
    assert "resume=latest: no run under" in proc.stderr


def test_resume_past_a_one_cycle_schedule_is_refused_before_it_runs(fake_fashion, tmp_path):
    """OneCycle is sized for the run's epochs: more of them would end in the scheduler's traceback."""
    cli("experiment=fashion_fast", *fake_fashion, "data.batch_size=64", "trainer.max_epochs=1", logs=tmp_path)
    (folder,) = runs(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    proc = cli(f"resume={folder}", "trainer.max_epochs=3", logs=tmp_path, expect=2)
    assert ("trainer.max_epochs=3 would train past the end of the run's learning-rate schedule: its OneCycleLR was "
            "sized for the 1 epochs") in proc.stderr
    assert "test it as it is" in proc.stderr and "resume with trainer.max_epochs" not in proc.stderr, "nothing to finish"
    assert "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_ckpt_path_last_tests_the_newest_run_or_says_why_not(tmp_path):
    proc = cli(*XOR, "train=false", "ckpt_path=last", logs=tmp_path, expect=2)
    assert "no run under" in proc.stderr and "has checkpoints/last.ckpt" in proc.stderr
    cli(*XOR, "trainer.max_epochs=1", logs=tmp_path)
    (folder,) = runs(tmp_path)
    proc = cli(*XOR, "train=false", "ckpt_path=last", logs=tmp_path)
    assert runs(tmp_path)[-1] != folder and "test/acc" in proc.stdout
    overrides = (runs(tmp_path)[-1] / ".hydra" / "overrides.yaml").read_text()
    assert f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}" in overrides


def test_nan_loss_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path):
    # Least squares with SGD at lr 3 diverges: the loss overflows a few epochs in.
    proc = cli("model=linear", "data=regression", "model.loss=mse", "model.optimizer._target_=torch.optim.SGD",
               "model.optimizer.lr=3.0", "data.batch_size=8",
               "trainer.max_epochs=40", logs=tmp_path, expect=1)
    (folder,) = runs(tmp_path, "train")
    assert "Run failed: train/loss is inf at global step" in proc.stderr and "Traceback" not in proc.stderr
    assert "Start a new run with a smaller learning rate" in proc.stderr
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < last["epoch"] < 39 and all(torch.isfinite(t).all() for k, t in last["state_dict"].items() if k.startswith("net."))
    assert "test/loss" not in proc.stdout, "no test after a failed fit"
    assert json.loads((folder / "job.json").read_text())["status"] == "failed"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only: mounting needs it; CI runs as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_full_disk_keeps_the_previous_last_checkpoint_loadable(tmp_path, small_disk):
    # ~0.5 MB checkpoints: one fits on the disk, two do not. Checkpoints alone (no pictures, CSV
    # metrics): the write that finds the disk full is the checkpoint's.
    big = [*XOR, "model.net.num_hidden=40000", "callbacks=checkpoint", "logger=csv"]
    cli(*big, "trainer.max_epochs=1", "callbacks.model_checkpoint.save_top_k=0", logs=small_disk)
    (folder,) = runs(small_disk)
    last = folder / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    proc = cli(f"resume={folder}", "trainer.max_epochs=2", "callbacks.model_checkpoint.save_top_k=0",
               logs=small_disk, expect=1)
    assert "No space left on device" in proc.stderr and f"could not write checkpoint {last}" in proc.stderr
    assert "the previous file is unchanged" in proc.stderr
    assert last.read_bytes() == before and torch.load(last, weights_only=True)["epoch"] == 0
    assert not list(folder.glob("checkpoints/.*.tmp")), "no temporary file left behind"


@pytest.mark.slow
def test_sweep_exits_nonzero_when_jobs_fail_and_stops_on_sigterm(tmp_path):
    sweep = tmp_path / "failing"
    # Nets whose outputs do not fit the task: found in each job, once the model and data are built.
    proc = cli("-m", *XOR, "trainer.max_epochs=1", "model.net.num_outputs=3,5", f"hydra.sweep.dir={sweep}",
               logs=tmp_path, expect=1)
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",failed," in r for r in rows[1:]) and "2 failed" in proc.stdout

    sweep = tmp_path / "stopped"
    stopped = signal_after_first_checkpoint(["-m", *LONG_XOR, "seed=1,2", f"hydra.sweep.dir={sweep}"],
                                            tmp_path, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    summary = (sweep / "summary.csv").read_text()
    assert ",interrupted," in summary and not list(sweep.glob("1_*")), "the sweep stops at the signal"
    assert f"Resume with: python experiments/run.py 'resume=\"{sweep / '0_seed=1'}\"'" in stopped.stderr


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_still_exits_130(tmp_path):
    stopped = signal_after_first_checkpoint(LONG_XOR, tmp_path, signal.SIGINT, signal.SIGINT, wait=0)
    err = stopped.stderr
    # 130, or killed by SIGINT (-2) when the second one lands after the run's own exit began:
    # a shell shows 130 for both
    assert stopped.returncode in (130, -signal.SIGINT), err[-3000:]
    (folder,) = runs(tmp_path)
    assert json.loads((folder / "job.json").read_text())["status"] == "interrupted"
    assert "Run interrupted by SIGINT" in err
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)  # whole, whichever step it holds
    assert all(torch.isfinite(t).all() for k, t in last["state_dict"].items() if k.startswith("net."))
