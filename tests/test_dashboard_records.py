"""What TensorBoard shows of a run (experiments/runs/hparams.py, lightning_modules/loggers.py) and how
runs are named and found again (experiments/runs/naming.py, experiments/runs/folder.py): the
hparams of a run, the custom scalars layout, no `epoch` scalar, run and sweep job folder
names, and resume=latest with those names. The sweep's hparams experiment is checked on the
grid of tests/test_sweeps.py."""

from __future__ import annotations

import re
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from experiments import pipeline
from tests.conftest import compose_run
from tests.test_sweeps import cli, tb_hparams

XOR = ["experiment=xor", "data.train_size=500", "trainer.check_val_every_n_epoch=1"]
RUN_NAME = re.compile(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_(?P<name>.+)_[0-9a-f]{6}$")


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return acc


def layout_of(run_dir: Path) -> dict[str, list[str]]:
    """The run's custom scalars layout: {chart title: its tag regexes}."""
    acc = events(run_dir)
    (event,) = acc.Tensors("custom_scalars__config__")[-1:]
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    return {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}


def assert_clean(hparams: dict) -> None:
    assert not [k for k in hparams if "_target_" in k or k.startswith(("paths", "hydra", "tags", "task_name"))], hparams
    assert not [v for v in hparams.values() if v in (None, "null", "None") or str(v).startswith("[")], hparams


def test_a_run_is_named_by_what_it_is_and_resume_latest_finds_it_by_its_experiment(tmp_path):
    cli(*XOR, "trainer.max_epochs=2", logs=tmp_path)
    (experiment_run,) = (tmp_path / "train" / "runs").iterdir()
    assert RUN_NAME.match(experiment_run.name)["name"] == "xor.xor-xor", experiment_run.name

    hparams = tb_hparams(experiment_run)
    assert {k: hparams[k] for k in ("experiment", "model", "data")} == {"experiment": "xor", "model": "xor", "data": "xor"}
    assert hparams["data.train_size"] == 500, "a value given on the command line"
    assert hparams["model.optimizer.lr"] == 0.1 and hparams["trainer.max_epochs"] == 2, "set by the experiment"
    assert {"seed", "data.batch_size", "trainer.precision"} <= set(hparams)
    assert_clean(hparams)

    acc = events(experiment_run)
    assert "epoch" not in acc.Tags()["scalars"] and {"train/loss", "val/loss", "val/acc"} <= set(acc.Tags()["scalars"])
    assert layout_of(experiment_run) == {"loss": ["^(train|val)/loss$"], "accuracy": ["^(train|val)/acc$"]}

    # A newer run of another choice: resume=latest alone takes it, experiment=xor resume=latest the XOR one.
    cli("model=xor", "data=xor", "data.train_size=500", "trainer.max_epochs=1", logs=tmp_path)
    plain_run = next(p for p in (tmp_path / "train" / "runs").iterdir() if p != experiment_run)
    assert RUN_NAME.match(plain_run.name)["name"] == "xor-xor", plain_run.name
    resumed = cli("experiment=xor", "resume=latest", "trainer.max_epochs=3", logs=tmp_path)
    assert f"Output: {experiment_run}" in resumed.stdout + resumed.stderr
    assert len(list((tmp_path / "train" / "runs").iterdir())) == 2, "resumed in its own folder"
    assert len(events(experiment_run).Scalars("val/acc")) == 3
    refused = cli("experiment=linear", "resume=latest", logs=tmp_path, expect=2)
    assert "no run under" in refused.stderr and "experiment=linear" in refused.stderr


def test_a_regression_run_charts_the_error_that_is_not_its_loss(tmp_path):
    # L1 loss: mae equals the loss, so the second chart is mse (decision D3).
    cfg = compose_run(["model=linear", "data=regression", "trainer.max_epochs=2"], tmp_path)
    pipeline.fit_and_test(cfg)
    assert layout_of(tmp_path) == {"loss": ["^(train|val)/loss$"], "mse": ["^(train|val)/mse$"]}
    hparams = tb_hparams(tmp_path)
    assert hparams["model"] == "linear" and hparams["data"] == "regression" and "experiment" not in hparams
    assert_clean(hparams)
    assert "epoch" not in events(tmp_path).Tags()["scalars"]


def test_job_folder_names_are_short_safe_and_name_the_swept_values():
    from experiments.runs.naming import MAX_NAME, job_folder_name

    overrides = ["experiment=xor", "model.optimizer.lr=0.01", "seed=2", "paths.log_dir=/tmp/x"]
    assert job_folder_name(3, overrides, ["model.optimizer.lr", "seed"]) == "3_lr=0.01,seed=2"
    assert job_folder_name(0, overrides, []) == "0", "a sweep that varies nothing"
    assert job_folder_name(4, ["model.optimizer.lr=0.02981377030705272", "data.batch_size=64"],
                           ["model.optimizer.lr", "data.batch_size"]) == "4_batch_size=64,lr=0.02981", "Optuna's draws"
    assert job_folder_name(5, ["model.optimizer.lr=1.0"], ["model.optimizer.lr"]) == "5_lr=1.0", "as typed"
    # Keys whose last parts clash keep their full names; paths lose their slashes.
    assert job_folder_name(1, ["a.x=1", "b.x=2"], ["a.x", "b.x"]) == "1_a.x=1,b.x=2"
    name = job_folder_name(2, ["paths.data_dir=/data/" + "d" * 200], ["paths.data_dir"])
    assert "/" not in name and len(name) <= len("2_") + MAX_NAME
