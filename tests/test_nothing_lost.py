"""Nothing already written is lost, and every command the project prints works when pasted: a
failing script removes only what it created (never a folder given as hydra.run.dir), a new run
never takes over another run's folder, one process writes a run folder at a time, a full disk
or a bad checkpoint is one paragraph, and the printed resume command of a sweep job in a log
folder with spaces, '=' and ',' resumes it. Real subprocesses throughout."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from experiments.config import overrides
from tests.conftest import QUIET, ROOT
from tests.helpers.user_code import FOR_XOR, user_package
from tests.helpers.preloaded import run_python

# A pasted command's `python` is the one of the environment the user activated: this interpreter's.
ACTIVATED_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
XOR = ["experiment=xor", "data.train_size=200", "data.val_size=100", "data.test_size=100"]


def script(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run_python([str(ROOT / "experiments" / name), *args], cwd=cwd, env={**os.environ, "PROJECT_ROOT": str(ROOT)},
                      timeout=300)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "experiments" / "run.py"), *args], cwd=ROOT,
                            env={**os.environ, "PROJECT_ROOT": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_paragraph(proc: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A small finished XOR run in a log folder with a long name, and what it printed (shared:
    tests that change the run work on a copy)."""
    logs = tmp_path_factory.mktemp("finished") / ("long_folder_name_" * 6) / "logs"
    proc = script("run.py", *XOR, *QUIET, "trainer.max_epochs=1", f"paths.log_dir={logs}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (logs / "train" / "runs").iterdir()
    return folder, proc


@pytest.fixture(scope="module")
def finished_run(finished) -> Path:
    return finished[0]


def test_printed_paths_are_whole_and_metrics_keep_their_digits(finished):
    folder, proc = finished
    assert f"output_dir: {folder}" in proc.stdout, "the config tree cuts no line"
    assert f"output_dir: {folder}" in (folder / "config_tree.log").read_text()
    printed = next(line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "Metrics: {" in line)
    loss = json.loads((folder / "job.json").read_text())["metrics"]["test/loss"]
    shown = float(f"{loss:.6g}")
    assert f"'test/loss': {shown}" in printed and shown == pytest.approx(loss, rel=1e-5), printed


def test_an_unexpected_error_in_user_code_shows_its_traceback_once(tmp_path):
    env = user_package(tmp_path, "boomnet", """
        import torch


        class Boom(torch.nn.Module):
            input_shape = (2,)

            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(2, 1)
                self.calls = 0

            def forward(self, x):
                self.calls += self.training
                if self.calls > 3:
                    raise RuntimeError("boom in user code")
                return self.layer(x)
        """)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "run.py"), *XOR, *QUIET, "model.net._target_=boomnet.Boom",
         *FOR_XOR, f"paths.log_dir={tmp_path}"],
        cwd=ROOT, env={**env, "PROJECT_ROOT": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert (proc.stdout + proc.stderr).count("Traceback") == 1 and "boomnet/__init__.py" in proc.stderr
    assert proc.stderr.startswith("Run failed: RuntimeError: boom in user code\nThe last good checkpoint: ")
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    assert json.loads((folder / "job.json").read_text())["error"] == "RuntimeError: boom in user code"


def test_an_early_error_removes_only_what_the_script_wrote_in_a_folder_that_existed(finished_run, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    (here / "keep.txt").write_text("mine")
    (here / "empty.ckpt").touch()
    proc = script("export.py", "ckpt_path=empty.ckpt", "hydra.run.dir=.", cwd=here)
    one_paragraph(proc, 1, "ckpt_path=empty.ckpt is not a checkpoint", "(it is empty)")
    assert sorted(p.name for p in here.iterdir()) == ["empty.ckpt", "keep.txt"], "the folder and its files survive"

    # Through Hydra this time: the model cannot take the data, found once both are built.
    (here / "empty.ckpt").unlink()
    proc = script("run.py", "model=cnn", "data=xor", *QUIET, f"hydra.run.dir={here}")
    one_paragraph(proc, 1, "model=cnn cannot train on data=xor")
    assert [p.name for p in here.iterdir()] == ["keep.txt"], "no .hydra/, log or lock left; the unrelated file kept"

    before = contents(finished_run)
    ckpt = finished_run / "checkpoints" / "last.ckpt"
    for name, args in (("evaluate.py", [f"ckpt_path={ckpt}", "data=regression"]), ("run.py", [*XOR, *QUIET]),
                       ("predict.py", [f"ckpt_path={ckpt}"])):
        proc = script(name, *args, f"hydra.run.dir={finished_run}")
        one_paragraph(proc, 1, f"hydra.run.dir={finished_run} is another run's folder", "resume=")
    assert contents(finished_run) == before, "the training run, its checkpoints and record untouched"


def test_two_resumes_of_one_run_at_once_one_runs_and_the_other_is_refused(finished_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    first = start(f"resume={folder}", "trainer.max_epochs=5000", *QUIET)
    deadline = time.time() + 120
    while json.loads((folder / "job.json").read_text()).get("pid") != first.pid:
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.2)
    second = script("run.py", f"resume={folder}", "trainer.max_epochs=5000", *QUIET)
    one_paragraph(second, 2, f"{folder} is in use by PID {first.pid}", "Wait for it to end")
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err[-3000:]
    record = json.loads((folder / "job.json").read_text())
    assert [s["status"] for s in record["segments"]] == ["ok", "interrupted"], "the refused resume added nothing"
    assert record["pid"] == first.pid


# Replaces checkpoint.ckpt with one of two versions, over and over, as a run renames each
# epoch's last.ckpt into place, until its stop file appears.
REPLACER = """
import os, sys, time
folder, pause = sys.argv[1], float(sys.argv[2])
n = 0
while not os.path.exists(os.path.join(folder, "stop")):
    n += 1
    os.link(os.path.join(folder, "v%d.ckpt" % (n % 2)), os.path.join(folder, "next"))
    os.replace(os.path.join(folder, "next"), os.path.join(folder, "checkpoint.ckpt"))
    time.sleep(pause)
"""


@pytest.mark.parametrize("open_files", ["/proc/self/fd", "none"])
def test_a_checkpoint_replaced_while_it_is_read_is_read_as_one_whole_version(open_files, tmp_path, monkeypatch):
    from experiments.runs import checkpoints

    if not Path(open_files).is_dir():  # a system without /proc: a read the file changed under is read again
        monkeypatch.setattr(checkpoints, "OPEN_FILES", tmp_path / open_files)

    for version, size in ((0, 1000), (1, 3000)):  # sizes differ, as an epoch's checkpoints may
        torch.save({"state_dict": {"w": torch.full((size,), float(version))}, "epoch": version}, tmp_path / f"v{version}.ckpt")
    shutil.copy(tmp_path / "v0.ckpt", tmp_path / "checkpoint.ckpt")
    pause = 0 if open_files != "none" else 0.02  # without /proc, as often as a run could: each read gets a few tries
    replacer = subprocess.Popen([sys.executable, "-c", REPLACER, str(tmp_path), str(pause)])
    try:
        seen = set()
        for _ in range(300):
            checkpoint = checkpoints.read(tmp_path / "checkpoint.ckpt")
            weights = checkpoint["state_dict"]["w"]
            version = checkpoint["epoch"]
            assert weights.numel() == (1000, 3000)[version] and bool((weights == version).all()), "one file's index over another's bytes"
            seen.add(version)
    finally:
        (tmp_path / "stop").touch()
        replacer.wait(timeout=30)
    assert seen == {0, 1}, "the file was replaced while it was read"


def fill(disk: Path) -> None:
    """Take every free byte of ``disk`` while a run writes to it (a size read first, as for
    fallocate, may be gone by the time it is asked for)."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        for chunk in (b"\0" * 65536, b"\0" * 4096):
            try:
                while True:
                    filler.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


def test_a_full_disk_while_writing_events_is_one_paragraph_and_a_failed_record(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run = start("experiment=xor", "data.train_size=20000", "data.batch_size=8", "trainer.max_epochs=3",
                    "test=false", *QUIET, f"paths.log_dir={disk}")
        deadline = time.time() + 120
        while not list(disk.rglob("last.ckpt")):
            assert run.poll() is None and time.time() < deadline, run.communicate()
            time.sleep(0.1)
        fill(disk)
        out, err = run.communicate(timeout=180)
        (folder,) = (disk / "train" / "runs").iterdir()
        assert run.returncode == 1 and "Traceback" not in out + err, err[-3000:]
        assert "Run failed: the disk is full (No space left on device" in err
        assert f"The last good checkpoint is intact: {folder / 'checkpoints' / 'last.ckpt'}" in err
        assert f"Free space, then resume with: python experiments/run.py resume={folder}" in err
        record = json.loads((folder / "job.json").read_text())
        assert record["status"] == "failed" and "No space left on device" in record["error"]
        assert not [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".partial"))], "no temporary files"
        torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)  # still whole
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_empty_truncated_and_foreign_checkpoints_are_one_paragraph(finished_run, tmp_path):
    (tmp_path / "empty.ckpt").touch()
    (tmp_path / "truncated.ckpt").write_bytes((finished_run / "checkpoints" / "last.ckpt").read_bytes()[:3000])
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    for ckpt, why in (("empty.ckpt", "(it is empty)"), ("truncated.ckpt", "(it is truncated, or not a file of torch.save)"),
                      ("foreign.ckpt", "holds no model weights")):
        for name, extra in (("evaluate.py", []), ("predict.py", []), ("run.py", ["train=false", *XOR])):
            proc = script(name, f"ckpt_path={tmp_path / ckpt}", *extra, *QUIET, f"paths.log_dir={tmp_path / 'logs'}")
            one_paragraph(proc, 1, f"ckpt_path={tmp_path / ckpt}", why)
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    proc = script("run.py", f"resume={folder}", "trainer.max_epochs=3", *QUIET)
    one_paragraph(proc, 2, f"resume={folder}: ckpt_path={folder / 'checkpoints' / 'last.ckpt'} is not a checkpoint")
    assert not (tmp_path / "logs").exists(), "nothing written"


def test_unwritable_and_too_long_log_folders_are_one_paragraph_before_any_work(tmp_path):
    (tmp_path / "a_file").touch()
    for log_dir, why in ((tmp_path / "a_file" / "logs", "is a file, not a folder"),
                         (tmp_path / ("x" * 300), "longer than 255 bytes")):
        proc = script("run.py", *XOR, *QUIET, f"paths.log_dir={log_dir}")
        one_paragraph(proc, 1, f"paths.log_dir={log_dir}: no run folder can be created", why)
        assert "CONFIG" not in proc.stdout
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = script("run.py", *XOR, *QUIET, f"paths.log_dir={readonly}")
        one_paragraph(proc, 1, "cannot be written by this user (read-only or no permission)")
        proc = script("run.py", *XOR, *QUIET, f"hydra.run.dir={readonly / 'run'}")
        one_paragraph(proc, 1, f"hydra.run.dir={readonly / 'run'}: the folder cannot be created")
    finally:
        subprocess.run(["umount", "-l", str(readonly)], check=True)


def test_quoted_values_read_back_as_typed():
    for text in ["/a/1_seed=2", "/tmp/my logs/x", "/tmp/it's", "/tmp/a,b", "/tmp/ü日本", "/tmp/back\\slash",
                 "/tmp/end\\", '/tmp/"dq"', "/t/'both\"", "null", "1e-3", "plain/path_1.0", ""]:
        assigned = overrides.assign("resume", text)
        assert overrides.value(assigned) == text, assigned
    assert overrides.assign("resume", "/plain/path") == "resume=/plain/path", "plain paths stay readable"
    assert overrides.command("experiments/run.py", "resume=/a b") == "python experiments/run.py 'resume=/a b'"


def test_the_printed_resume_command_of_a_sweep_job_in_a_spaced_folder_resumes_it(tmp_path):
    logs = tmp_path / "my logs, ü"
    sweep = start("-m", "experiment=xor", "data.train_size=4000", "data.batch_size=8", "trainer.max_epochs=2",
                  "test=false", "seed=1,2", "model.net.num_hidden=4,8", *QUIET, overrides.assign("paths.log_dir", str(logs)))
    deadline = time.time() + 120
    while not list(logs.rglob("last.ckpt")):
        assert sweep.poll() is None and time.time() < deadline, sweep.communicate()
        time.sleep(0.1)
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 128 + signal.SIGTERM, err[-3000:]
    (job,) = [p.parent.parent for p in logs.rglob("last.ckpt")]
    assert "=" in job.name and "," in job.name, job.name  # 0_num_hidden=4,seed=1
    printed = next(line for line in err.splitlines() if line.startswith("Resume with: "))[len("Resume with: "):]
    assert printed == json.loads((job / "job.json").read_text())["resume_command"]
    resumed = subprocess.run(["bash", "-c", f"{printed} trainer.enable_progress_bar=false"], cwd=ROOT,
                             env={**os.environ, "PROJECT_ROOT": str(ROOT), "PATH": ACTIVATED_PATH},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((job / "job.json").read_text())
    assert [s["status"] for s in record["segments"]] == ["interrupted", "ok"] and record["status"] == "ok"
    assert torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1, "both epochs trained"

    # resume=latest in that log folder: the run it finds is continued in its own folder.
    first = script("run.py", *XOR, *QUIET, "trainer.max_epochs=1", overrides.assign("paths.log_dir", str(logs)))
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    again = script("run.py", *XOR, *QUIET, "resume=latest", "trainer.max_epochs=2",
                   overrides.assign("paths.log_dir", str(logs)))
    assert again.returncode == 0 and f"Output: {run}" in again.stdout + again.stderr, again.stderr[-3000:]
