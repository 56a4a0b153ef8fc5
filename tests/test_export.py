"""experiments/export.py: a checkpoint's net as a weights-only state_dict and a torch.export
program that a Python with only torch loads, giving the checkpoint model's outputs bit for bit."""

import subprocess
import sys

import pytest
import torch

from experiments.pipeline import build, fit_and_test
from tests.conftest import ROOT, compose_run

EXPORT = [sys.executable, str(ROOT / "experiments" / "export.py")]

# Runs in `python -I` from an empty folder, with this project's packages (installed editable in
# the venv), Lightning and Hydra made unimportable: only torch is there.
PLAIN_TORCH = """
import sys
class Unavailable:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"lightning_modules", "experiments", "datamodules", "lightning", "hydra"}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Unavailable())
import torch
try:
    import lightning_modules
    sys.exit("the project is importable here")
except ModuleNotFoundError:
    pass
model = torch.export.load("model.pt2").module()
inputs = torch.load("inputs.pt", weights_only=True)
with torch.no_grad():
    torch.save([model(x) for x in inputs], "outputs.pt")
"""


def checkpoint_model_outputs(ckpt_path):
    """The test split's inputs and the outputs of the checkpoint's model on them, in this process."""
    checkpoint = torch.load(ckpt_path, weights_only=True)
    from omegaconf import OmegaConf

    model, datamodule = build(OmegaConf.create(checkpoint["run_config"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    datamodule.setup("test")
    inputs = [datamodule.on_after_batch_transfer(batch, 0)[0] for batch in datamodule.test_dataloader()]
    with torch.no_grad():
        return inputs, [model(x) for x in inputs], model


@pytest.mark.parametrize("overrides", [["model=xor", "data=xor"], ["model=linear", "data=regression"],
                                       ["model=convnet_best", "data=fashion_augmented"]],
                         ids=lambda o: " ".join(o))
def test_export_round_trip_without_the_project(overrides, tmp_path, fake_fashion):
    extra = fake_fashion if any("fashion" in o for o in overrides) else []
    metrics = fit_and_test(compose_run([*overrides, *extra, "debug=fdr"], tmp_path / "run"))
    ckpt = metrics["best_model_path"]
    out = tmp_path / "export"

    done = subprocess.run([*EXPORT, f"ckpt_path={ckpt}", f"hydra.run.dir={out}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bit-identical" in done.stdout + done.stderr

    inputs, expected, model = checkpoint_model_outputs(ckpt)
    assert sum(len(x) for x in inputs) > 1 and len(inputs) >= 1
    # The state_dict: plain tensors, for the net's own class.
    state = torch.load(out / "model_state_dict.pt", weights_only=True)
    assert state.keys() == model.net.state_dict().keys()
    net = type(model.net)(**{k: v for k, v in model.run_config["model"]["net"].items() if k != "_target_"})
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        for x, want in zip(inputs, expected):
            assert torch.equal(net(x), want)

    # The program: loaded by a Python that has torch and nothing of this project.
    torch.save(inputs, out / "inputs.pt")
    plain = subprocess.run([sys.executable, "-I", "-c", PLAIN_TORCH], cwd=out, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    outputs = torch.load(out / "outputs.pt", weights_only=True)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert torch.equal(got, want)


@pytest.mark.parametrize("argument,message", [
    (None, "ckpt_path is required"),
    ("ckpt_path={tmp}/missing.ckpt", "no such file"),
    ("ckpt_path={tmp}/garbage.ckpt", "is not a checkpoint that loads with torch.load(weights_only=True)"),
    ("ckpt_path={tmp}/foreign.ckpt", "was not written by experiments/run.py"),
])
def test_bad_checkpoint_is_one_paragraph_and_leaves_no_folder(argument, message, tmp_path):
    (tmp_path / "garbage.ckpt").write_text("not a checkpoint")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "foreign.ckpt")
    out = tmp_path / "export"
    args = [argument.format(tmp=tmp_path)] if argument else []
    done = subprocess.run([*EXPORT, *args, f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_help_lists_what_export_takes():
    done = subprocess.run([*EXPORT, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0
    assert "Usage: python experiments/export.py ckpt_path=PATH" in done.stdout
    assert "model=" not in done.stdout and "trainer:" not in done.stdout
