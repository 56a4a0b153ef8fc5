"""The README is the source of truth for what users type: every `python experiments/...` command
in its code blocks runs as written (training shortened), in a fresh project folder, in order.

Placeholders a reader fills in from what an earlier command printed are filled in the same way:
`<run>` (the newest default run's folder in logs/train/runs), `<best>` (its best checkpoint's name),
`<sweep>` (the newest sweep folder), `<partition>` (the SLURM partition). A `$ command` line is
a transcript: the lines after it are what the command prints, and must be in its output. The
data of a user's own that the README's commands read (``data/my_images``, ``data/houses.csv``)
is written into the project folder first, as a user would have it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import DEBIAN_FASHION, ROOT
from tests.helpers.preloaded import run_python

README = ROOT / "README.md"
# Training is cut to a few batches; everything else runs as typed.
SHORT = ["trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
         "trainer.enable_progress_bar=false"]
# Placeholders, resumes and checkpoints: what earlier commands made (a search: its study, study_of).
READS_EARLIER_OUTPUT = ("<", "resume=", "ckpt_path=")
NEEDS_GPU = ("trainer=gpu", "trainer=ddp ", "data.on_device=true", "<gpu partition>", "--device cuda")


@dataclass
class Command:
    line: int
    text: str
    expected_output: list[str] = field(default_factory=list)

    @property
    def transcript(self) -> bool:
        return bool(self.expected_output)


def readme_commands(text: str) -> list[Command]:
    """`python experiments/...` commands of the README's code blocks (continuations joined)."""
    commands: list[Command] = []
    in_block, pending, current = False, "", None
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("```"):
            in_block, pending, current = not in_block, "", None
            continue
        if not in_block:
            continue
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        prompt = line.startswith("$ ")
        body = line[2:] if prompt else line
        if body.startswith("python experiments/"):
            current = Command(number, body)
            commands.append(current)
            if not prompt:
                current = None
        elif current is not None and line:
            current.expected_output.append(line)
    return commands


def test_readme_commands_are_found():
    commands = readme_commands(README.read_text())
    scripts = {c.text.split()[1] for c in commands}
    assert {"experiments/run.py", "experiments/evaluate.py", "experiments/predict.py", "experiments/export.py"} <= scripts
    assert len(commands) >= 20


class Project:
    """A fresh folder the README's commands run in, as a user's clone would be."""

    def __init__(self, home: Path, data_dir: Path, slurm_env: dict | None):
        self.home, self.data_dir, self.slurm_env = home, data_dir, slurm_env

    def newest(self, pattern: str) -> Path:
        found = sorted(self.home.glob(pattern), key=lambda p: p.stat().st_mtime)
        assert found, f"nothing matches {pattern} yet: the README uses it before any command made it"
        return found[-1]

    def fill(self, text: str) -> str:
        if "<run>" in text or "<best>" in text:
            # the default run (python experiments/run.py), which the README's examples continue and test
            run = self.newest("logs/train/runs/*_cnn-fashion_*/checkpoints/last.ckpt").parents[1]
            best = sorted(p.stem for p in (run / "checkpoints").glob("epoch_*.ckpt"))
            text = text.replace("<run>", run.name).replace("<best>", best[-1] if best else "last")
        if "<sweep>" in text:
            text = text.replace("<sweep>", self.newest("logs/train/multiruns/*").name)
        if "<partition>" in text:
            text = text.replace("<partition>", "debug")  # tests/helpers/slurm_cluster.py's one partition
        leftover = re.findall(r"<[^>]+>", text)
        assert not leftover, f"placeholder {leftover} has no value in tests/test_readme.py"
        return text

    def args_for(self, command: Command) -> list[str]:
        argv = shlex.split(self.fill(command.text), comments=True)
        script, args = argv[1], [re.sub(r"^hydra\.sweeper\.n_trials=\d+$", "hydra.sweeper.n_trials=2", a) for a in argv[2:]]
        if "--help" in args or command.transcript:
            return [sys.executable, str(ROOT / script), *args]
        extra = [f"paths.data_dir={self.data_dir}"]
        if script.endswith("run.py"):
            extra += SHORT
            if any(a.startswith("hparams_search=") for a in args):
                extra.append("hydra.sweeper.n_trials=2")
        given = {a.split("=", 1)[0] for a in args}
        return [sys.executable, str(ROOT / script), *args, *(e for e in extra if e.split("=", 1)[0] not in given)]

    def failure(self, command: Command) -> str | None:
        """What is wrong with what ``command`` did, or None."""
        proc = self.run(command)
        output = proc.stdout + proc.stderr
        where = f"README.md:{command.line}: {command.text}"
        if command.transcript:
            flat = " ".join(output.split())
            missing = [line for line in command.expected_output if " ".join(line.split()) not in flat]
            if missing:
                return f"{where}\n  does not print {missing}\n  it printed:\n{output[-1500:]}"
        elif proc.returncode != 0:
            return f"{where}\n  exit code {proc.returncode}:\n{output[-2500:]}"
        elif "Traceback" in output:
            return f"{where}\n  printed a traceback:\n{output[-2500:]}"
        return None

    def run(self, command: Command) -> subprocess.CompletedProcess:
        slurm = self.slurm_env if "hydra/launcher=slurm" in command.text else {}
        # The project folder last: the cluster's environment was taken from this process, whose
        # PROJECT_ROOT is the checkout (tests/conftest.py), where no README command may write.
        env = {**os.environ, **slurm, "PROJECT_ROOT": str(self.home), "TORCH_NUM_THREADS": "1"}
        return run_python(self.args_for(command)[1:], cwd=self.home, env=env, timeout=600)


def test_a_preloaded_command_runs_as_a_fresh_python_would(tmp_path):
    """What test_every_readme_command_runs_as_written trusts of tests/helpers/preloaded.py."""
    script = tmp_path / "script.py"
    script.write_text(
        "import os, sys\n"
        "print('argv', sys.argv[1:], 'cwd', os.getcwd(), 'env', os.environ.get('GREETING'), 'path0', sys.path[0])\n"
        "print('to stderr', file=sys.stderr)\n"
        "import atexit; atexit.register(lambda: print('at exit'))\n"
        "if sys.argv[1] == 'raise': raise ValueError('a bad value')\n"
        "sys.exit(int(sys.argv[1]))\n")
    done = run_python([str(script), "3"], cwd=tmp_path, env={**os.environ, "GREETING": "hello"}, timeout=120)
    assert done.returncode == 3
    assert done.stdout.splitlines() == [f"argv ['3'] cwd {tmp_path} env hello path0 {tmp_path}", "at exit"]
    assert done.stderr == "to stderr\n"
    raised = run_python([str(script), "raise"], cwd=tmp_path, env=dict(os.environ), timeout=120)
    assert raised.returncode == 1 and "Traceback" in raised.stderr and "ValueError: a bad value" in raised.stderr


def test_every_readme_command_runs_as_written(tmp_path, request):
    if not DEBIAN_FASHION.is_dir():
        pytest.skip(f"the README's default experiment needs Fashion-MNIST ({DEBIAN_FASHION}: `make setup` installs it)")
    commands = readme_commands(README.read_text())
    slurm_env = None
    if any("hydra/launcher=slurm" in c.text for c in commands):
        cluster = request.getfixturevalue("slurm_cluster")  # skips where SLURM cannot run
        slurm_env = cluster.env
    project = Project(tmp_path / "clone", tmp_path / "data", slurm_env)
    project.home.mkdir()
    from tests.helpers.own_data import write_image_folder, write_table

    write_image_folder(project.home / "data" / "my_images", per_class=40)
    write_table(project.home / "data" / "houses.csv", target="price")
    runnable = [c for c in commands if not any(marker in c.text for marker in NEEDS_GPU)]
    # (tests/test_gpu.py covers the GPU path where a GPU exists.) Two commands at a time, one per
    # core, each once what it reads has been written (waits_for).
    slots = threading.Semaphore(2)
    outcomes: list[Future] = []

    def run_after(command: Command, earlier: list[Future]) -> str | None:
        for outcome in earlier:
            outcome.result()
        with slots:
            return project.failure(command)

    with ThreadPoolExecutor(max_workers=len(runnable)) as pool:
        for i, command in enumerate(runnable):
            earlier = [outcomes[j] for j in waits_for(command, runnable[:i])]
            outcomes.append(pool.submit(run_after, command, earlier))
    failures = [f for f in (outcome.result() for outcome in outcomes) if f]
    assert not failures, "\n\n".join(failures)


def study_of(text: str) -> tuple[str, str] | None:
    """The Optuna study a README command runs trials of (its search and study name), or None."""
    search = re.search(r"hparams_search=(\S+)", text)
    name = re.search(r"hydra\.sweeper\.study_name=(\S+)", text)
    return (search.group(1), name.group(1) if name else "") if search else None


def waits_for(command: Command, earlier: list[Command]) -> list[int]:
    """The earlier commands that ``command`` reads the output of: all of them for a placeholder, a
    resume or a checkpoint; those of its own study for a search (which continues it)."""
    if any(marker in command.text for marker in READS_EARLIER_OUTPUT):
        return list(range(len(earlier)))
    study = study_of(command.text)
    return [i for i, c in enumerate(earlier) if study is not None and study_of(c.text) == study]
