"""The command line contract: experiments/run.py and experiments/evaluate.py as a user runs them."""

import csv
import os

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import ROOT
from tests.helpers.preloaded import run_python

ENV = {**os.environ, "PROJECT_ROOT": str(ROOT)}
QUICK = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.max_epochs=20",
         "trainer.check_val_every_n_epoch=5"]


def cli(script, *args, check=True):
    proc = run_python([f"experiments/{script}", *args], cwd=ROOT, env=ENV, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_help_lists_groups_and_options():
    out = cli("run.py", "--help").stdout
    groups = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and "," in line)
    expected = {"model": {"cnn", "mlp", "xor", "linear", "two_layer"}, "data": {"fashion", "xor", "regression"},
                "trainer": {"default", "cpu", "gpu"}, "logger": {"tensorboard", "csv"}, "debug": {"fdr", "limit"},
                "experiment": {"xor", "linear", "two_layer", "fashion_seed"}, "callbacks": {"default"}}
    for group, wanted in expected.items():
        assert wanted <= set(groups[group].split(", ")), (group, groups.get(group))
    assert "paths: default" in out


def test_run_writes_config_checkpoints_and_events_then_evaluate_rebuilds(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli("run.py", "experiment=xor", *QUICK, f"hydra.run.dir={run_dir}")
    assert "CONFIG" in proc.stdout and "Metrics:" in proc.stderr + proc.stdout
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "SimpleClassifier" in (run_dir / "config_tree.log").read_text()
    best = [p for p in (run_dir / "checkpoints").glob("epoch_*.ckpt")]
    assert len(best) == 1 and (run_dir / "checkpoints" / "last.ckpt").is_file()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 19 and last["run_config"]["model"]["net"]["num_hidden"] == 4

    events = EventAccumulator(str(run_dir))
    events.Reload()
    test_acc = events.Scalars("test/acc")[-1].value

    eval_dir = tmp_path / "eval"
    cli("evaluate.py", f"ckpt_path={best[0]}", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
        f"hydra.run.dir={eval_dir}")
    again = EventAccumulator(str(eval_dir))
    again.Reload()
    assert again.Scalars("test/acc")[-1].value == test_acc

    cli("predict.py", f"ckpt_path={best[0]}", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path / 'predict'}")
    with open(tmp_path / "predict" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 500 and set(rows[0]) == {"index", "target", "predicted", "p[0]", "p[1]"}
    accuracy = sum(r["target"] == r["predicted"] for r in rows) / len(rows)
    assert abs(accuracy - test_acc) < 1e-6


def test_impossible_pairing_fails_before_training(tmp_path):
    proc = cli("run.py", "model=cnn", "data=xor", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    assert "model=cnn cannot train on data=xor" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_evaluate_rejects_missing_checkpoint(tmp_path):
    proc = cli("evaluate.py", f"ckpt_path={tmp_path}/nope.ckpt", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "nope.ckpt: no such file" in proc.stderr
