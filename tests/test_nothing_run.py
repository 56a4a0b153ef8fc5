"""A config read from a file is data, not code (experiments/config/trusted.py): a shared checkpoint or an
edited run folder names a ``_target_`` that would run a command or truncate a file, and evaluate,
predict, export and resume refuse it before anything is built; the payload never runs.
``trusted_packages`` lets a user's own classes through."""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from experiments.config.trusted import check_targets, why_refused
from tests.conftest import QUIET, ROOT
from tests.helpers.user_code import FOR_XOR, user_package

XOR = ["experiment=xor", "data.train_size=200", "data.val_size=100", "data.test_size=100", "trainer.max_epochs=1"]


def script(name: str, *args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "experiments" / name), *args], cwd=cwd,
                          env={**os.environ, "PROJECT_ROOT": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One small XOR run's folder (shared: tests copy what they change)."""
    logs = tmp_path_factory.mktemp("trusted") / "logs"
    proc = script("run.py", *XOR, *QUIET, f"paths.log_dir={logs}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (logs / "train" / "runs").iterdir()
    return folder


class Payload:
    """Unpickling this runs a shell command: what a pickle-loading target would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def with_net(trained: Path, net: dict, path: Path) -> Path:
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["run_config"]["model"]["net"] = net
    torch.save(checkpoint, path)
    return path


def test_allowed_and_refused_targets():
    assert why_refused("lightning_modules.nets.SimpleClassifier", []) is None
    assert why_refused("torch.optim.SGD", []) is None and why_refused("torch.nn.Linear", []) is None
    assert why_refused("torchvision.models.resnet18", []) is None, "a model builder"
    assert why_refused("torchmetrics.classification.MulticlassF1Score", []) is None
    for target in ("builtins.open", "os.system", "subprocess.run", "io.BytesIO", "base64.b64decode",
                   "experiments.runs.folder.write_text_atomic", "hydra.utils.get_method"):
        assert why_refused(target, []) == "its package is not on the allow-list", target
    for target in ("torch.load", "torch.hub.load", "torch.jit.load", "torch.save", "torch.utils.cpp_extension.load_inline",
                   "lightning.pytorch.cli.LightningCLI", "torchvision.io.write_png"):
        assert "loads code or pickles" in why_refused(target, []), target
    assert why_refused("torch.zeros", []).startswith("it is not a class"), "a function outside the builders"
    assert why_refused("torch.nn.Module.__init__", []) == "it is not a public dotted name"
    assert why_refused("mynets.Net", ["mynets"]) is None and why_refused("os.system", ["os.system"]) is None
    with pytest.raises(ValueError, match="weights_only=False, which would load pickled objects"):
        check_targets({"net": {"_target_": "torch.nn.Linear", "weights_only": False}}, "a file")
    with pytest.raises(ValueError, match=r"names a\.b\[1\]\._target_=os\.system"):
        check_targets({"a": {"b": [1, {"_target_": "os.system"}]}}, "a file")


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(trained, tmp_path):
    marker = tmp_path / "pwned"
    payload = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    evil = with_net(trained, {"_target_": "torch.load", "weights_only": False, "f": {
        "_target_": "io.BytesIO", "initial_bytes": {"_target_": "base64.b64decode", "s": payload}}},
        tmp_path / "shared.ckpt")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    truncating = with_net(trained, {"_target_": "builtins.open", "file": str(victim), "mode": "w"},
                          tmp_path / "truncating.ckpt")
    for name, ckpt, target in (("evaluate.py", evil, "torch.load"), ("predict.py", evil, "torch.load"),
                               ("export.py", evil, "torch.load"), ("evaluate.py", truncating, "builtins.open")):
        on_cpu = [] if name == "export.py" else QUIET[:1]  # export.py takes no trainer
        proc = script(name, f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path / 'logs'}", *on_cpu)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert f"names model.net._target_={target}, which this project does not build from a file" in proc.stderr
        assert "Nothing was built" in proc.stderr and "trusted_packages=[" in proc.stderr
    assert not marker.exists(), "the payload never ran"
    assert victim.read_text() == "precious", "the file was not truncated"
    assert not (tmp_path / "logs").exists(), "refused before any folder was made"


def test_an_edited_run_folder_is_not_replayed_by_resume(trained, tmp_path):
    folder = tmp_path / "run"
    subprocess.run(["cp", "-a", str(trained), str(folder)], check=True)
    recorded = folder / ".hydra" / "overrides.yaml"
    original = yaml.safe_load(recorded.read_text())
    marker = tmp_path / "pwned"
    for edit, told in ((f"+callbacks.evil={{_target_:os.system,command:'touch {marker}'}}",
                        "names callbacks.evil._target_=os.system"),
                       ("model.net._target_=builtins.exec", "names model.net._target_=builtins.exec"),
                       (f"hydra.job.env_set.LD_PRELOAD={marker}", "a Hydra setting, which a run never records there")):
        recorded.write_text(yaml.safe_dump([*original, edit]))
        before = (folder / "job.json").read_bytes()
        proc = script("run.py", f"resume={folder}", "trainer.max_epochs=3", *QUIET)
        assert proc.returncode == 2 and told in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert (folder / "job.json").read_bytes() == before
    assert not marker.exists()


def test_a_users_own_net_is_built_from_its_checkpoint_once_trusted(tmp_path):
    env = user_package(tmp_path, "mynets", """
        import torch


        class Tiny(torch.nn.Module):
            input_shape = (2,)

            def __init__(self, hidden: int = 8):
                super().__init__()
                self.layers = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

            def forward(self, x):
                return self.layers(x)
        """)
    logs = tmp_path / "logs"
    proc = script("run.py", *XOR, *QUIET, "model.net._target_=mynets.Tiny", *FOR_XOR, f"paths.log_dir={logs}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    refused = script("evaluate.py", f"ckpt_path={ckpt}", f"paths.log_dir={logs}", *QUIET, env=env)
    assert refused.returncode == 1 and "names model.net._target_=mynets.Tiny" in refused.stderr
    assert "add trusted_packages=[mynets]" in refused.stderr
    trusted = script("evaluate.py", f"ckpt_path={ckpt}", "trusted_packages=[mynets]", f"paths.log_dir={logs}", *QUIET,
                     env=env)
    assert trusted.returncode == 0 and "test/acc" in trusted.stdout + trusted.stderr, trusted.stderr[-3000:]
