"""Bad input is told in one paragraph, before any work: the real scripts in subprocesses (exit
code, no traceback, the key named, nothing printed or written), and the schemas kept in step
with the constructors they describe."""

import inspect
import os
import subprocess
import sys
import typing

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from experiments.config.checks import logged_during_fit, validate_config
from experiments.config.command_line import check_command_line
from experiments.config.errors import ConfigError
from experiments.config.schema import CODE_GIVES, SCHEMAS
from tests.conftest import CONF, QUIET, ROOT, compose_run

CORES = len(os.sched_getaffinity(0))

BAD_VALUES = [
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is not allowed: trainer.max_epochs takes an integer"),
    (["data.batch_size=abc"], "data.batch_size='abc' is not allowed: data.batch_size takes an integer"),
    (["model.optimizer.lr=-1"], "model.optimizer.lr=-1 is not allowed: a learning rate is a finite number > 0"),
    (["model.optimizer.lr=inf"], "model.optimizer.lr=inf is not allowed: a learning rate is a finite number > 0"),
    (["data.batch_size=0"], "data.batch_size=0 is not allowed: data.batch_size takes an integer >= 1"),
    (["model=xor", "data=xor", "data.eval_batch_size=-5"], "data.eval_batch_size=-5 is not allowed: "
                                                            "data.eval_batch_size takes an integer >= 1 or null"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed: train for an integer >= 1 epochs"),
    ([f"trainer.devices={CORES + 1}"], f"trainer.devices={CORES + 1} is not allowed: this machine has {CORES} CPU core"),
    (["monitor.metric=val/accuracy"], "monitor.metric=val/accuracy is not allowed: lightning_modules.ClassificationModule "
                                      "does not log it every epoch of a fit. Monitor one of"),
    (["trainer.max_epoch=3"], "trainer.max_epoch is not a setting (lightning.pytorch.Trainer has no argument "
                              "'max_epoch'). Did you mean trainer.max_epochs?"),
    (["+trainer.max_epoch=3"], "Did you mean trainer.max_epochs?"),
    (["max_epochs=3"], "max_epochs is not a setting (the config has no key 'max_epochs'). Did you mean trainer.max_epochs?"),
    (["trainer.limit_train_batches=many"], "trainer.limit_train_batches='many' is not allowed: trainer.limit_train_batches "
                                           "takes a number or null"),
    (["model=xor", "data=xor", "model.net.num_hidden=2.5"], "model.net.num_hidden=2.5 is not allowed"),
    (["model=linear", "data=regression", "monitor.metric=val/mae"], "monitor.metric=val/mae is not allowed"),
    (["train=false", "test=false"], "train=false and test=false: nothing to do"),
    (["+trainer.max_steps=5"], "+trainer.max_steps=5: trainer.max_steps is already a setting, so it takes no +"),
    (["model._target_=lightning_modules.Nope"], "model._target_=lightning_modules.Nope cannot be imported"),
    (["model=resnet9000"], "Could not find 'model/resnet9000'"),  # Hydra's own message
]


def script(name: str, *args: str, tmp_path, env=None) -> subprocess.CompletedProcess:
    logs = tmp_path / "logs"
    return subprocess.run([sys.executable, f"experiments/{name}", *args, *QUIET, f"paths.log_dir={logs}"],
                          cwd=ROOT, env={**os.environ, "PROJECT_ROOT": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=120)


def assert_told_in_one_paragraph(proc, message, tmp_path):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in out and "CONFIG" not in out, "no traceback, no config tree: nothing ran"
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*")), "no run folder left"


@pytest.mark.parametrize("args,message", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_value_is_one_paragraph_before_any_work(args, message, tmp_path):
    proc = script("run.py", *args, tmp_path=tmp_path)
    assert_told_in_one_paragraph(proc, message, tmp_path)
    assert len(proc.stderr.strip().splitlines()) <= 3 or "Available options" in proc.stderr


def test_full_error_still_shows_the_paragraph_under_the_traceback(tmp_path):
    proc = script("run.py", "trainer.max_epochs=abc", tmp_path=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "trainer.max_epochs='abc' is not allowed" in proc.stderr.splitlines()[-1]


def test_any_trainer_argument_needs_no_plus_as_lightning_takes_it():
    args = ["experiment=xor", "trainer.max_time=00:00:00:15", "trainer.detect_anomaly=false"]
    assert check_command_line("run", args) == ["experiment=xor", "+trainer.max_time=00:00:00:15",
                                               "+trainer.detect_anomaly=false"]
    with pytest.raises(SystemExit):  # still refused: not an argument of lightning.pytorch.Trainer
        check_command_line("run", ["trainer.max_tme=00:00:00:15"])


def test_common_trainer_keys_need_no_plus(tmp_path):
    keys = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
            "trainer.gradient_clip_val=0.5", "trainer.accumulate_grad_batches=2", "trainer.val_check_interval=1.0",
            "trainer.overfit_batches=0", "trainer.fast_dev_run=false", "trainer.max_steps=-1"]
    cfg = compose_run(["experiment=xor", *keys], tmp_path)
    validate_config(cfg)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.limit_train_batches == 2 and trainer.gradient_clip_val == 0.5 and trainer.accumulate_grad_batches == 2


def test_evaluate_and_predict_need_a_checkpoint(tmp_path):
    for name in ("evaluate.py", "predict.py"):
        proc = script(name, tmp_path=tmp_path)
        assert_told_in_one_paragraph(proc, f"ckpt_path is required: python experiments/{name} ckpt_path=PATH", tmp_path)
    proc = script("predict.py", f"ckpt_path={tmp_path / 'nope.ckpt'}", tmp_path=tmp_path)
    assert_told_in_one_paragraph(proc, "nope.ckpt: no such file", tmp_path)


def fake_checkpoint(tmp_path, model: dict):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "run_config": {"model": model}}, path)
    return path


def test_run_tests_only_a_checkpoint_of_its_own_model(tmp_path):
    cfg = compose_run(["model=cnn"], tmp_path)
    cnn = fake_checkpoint(tmp_path, OmegaConf.to_container(cfg.model, resolve=True))
    proc = script("run.py", "model=mlp", "train=false", f"ckpt_path={cnn}", tmp_path=tmp_path)
    assert_told_in_one_paragraph(proc, f"ckpt_path={cnn} holds another model's weights (model.net._target_: "
                                       "'lightning_modules.nets.LeNet' there, 'lightning_modules.nets.MLP' here)", tmp_path)
    assert f"python experiments/evaluate.py ckpt_path={cnn}" in proc.stderr
    # the same class with other shapes; a dropout or a learning rate does not change the weights
    proc = script("run.py", "model=cnn", "model.net.num_classes=7", "train=false", f"ckpt_path={cnn}", tmp_path=tmp_path)
    assert_told_in_one_paragraph(proc, "(model.net.num_classes: 10 there, 7 here)", tmp_path)
    cfg = compose_run(["model=cnn", "train=false", f"ckpt_path={cnn}", "model.optimizer.lr=0.5"], tmp_path)
    from experiments.runs.start import check_checkpoint

    check_checkpoint(cfg, "run")


def test_a_model_that_cannot_take_the_data_leaves_no_folder(tmp_path):
    proc = script("run.py", "model=cnn", "data=xor", tmp_path=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert ("model=cnn cannot train on data=xor: LeNet takes its in_channels from the data, the channels of image "
            "inputs [C, H, W], but XORDataModule gives inputs of shape [2]") in proc.stderr
    assert "CONFIG" not in proc.stdout + proc.stderr, "refused before the config tree is printed"
    assert not [p for p in (tmp_path / "logs").rglob("*") if p.is_dir() and (p / ".hydra").is_dir()], "no run folder"


def test_missing_data_is_told_whole_and_leaves_no_folder(tmp_path):
    proc = script("run.py", "model=mlp", "data=fashion", f"data.data_dir={tmp_path / 'data'}", "data.download=false",
                  f"data.debian_dir={tmp_path / 'nowhere'}", tmp_path=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert (f"Fashion-MNIST is not in {tmp_path / 'data' / 'FashionMNIST' / 'raw'} and data.download=false. Get it one "
            "of two ways: offline, apt-get install dataset-fashion-mnist") in proc.stderr
    assert "data.download=true and torchvision downloads it" in proc.stderr
    assert not [p for p in (tmp_path / "logs").rglob(".hydra")], "no run folder"


def test_predict_names_the_splits(tmp_path):
    ckpt = fake_checkpoint(tmp_path, {})
    proc = script("predict.py", f"ckpt_path={ckpt}", "split=validation", tmp_path=tmp_path)
    assert_told_in_one_paragraph(proc, "split=validation is not allowed: predict on one of train, val, test", tmp_path)


def test_offline_download_message_is_complete_and_does_not_advise_download(tmp_path, monkeypatch):
    import urllib.error

    from datamodules import fashion_mnist

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...,\n"
                           + str(urllib.error.URLError("[Errno -3] Temporary failure in name resolution")))

    monkeypatch.setattr(fashion_mnist, "FashionMNIST", offline)
    with pytest.raises(fashion_mnist.FashionMNISTUnavailable) as err:
        fashion_mnist.ensure_raw_files(tmp_path / "data", debian_dir=tmp_path / "nowhere", download=True)
    message = str(err.value)
    assert "\n" not in message, "one paragraph"
    assert "downloading it failed (RuntimeError: Error downloading" in message and "Temporary failure" in message
    assert "apt-get install dataset-fashion-mnist" in message and str(tmp_path / "data" / "FashionMNIST" / "raw") in message
    assert "data.download=true" not in message
    from experiments.config.errors import explain

    assert explain(err.value) == message, "the scripts print it whole, without a traceback"


# ---------------------------------------------------------------- the schemas and the configs


@pytest.mark.parametrize("target", sorted(SCHEMAS))
def test_schema_fields_are_the_constructor_arguments(target):
    params = inspect.signature(get_class(target).__init__).parameters.values()
    wanted = {p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    assert set(SCHEMAS[target].__dataclass_fields__) == wanted - set(CODE_GIVES.get(target, ()))
    typing.get_type_hints(SCHEMAS[target])  # every type resolves


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# Every option of every group, the model and data options each in a pairing that works (chosen by
# what the data declares and the model's task learns: a config you add to conf/ needs no entry here).
PAIRS = ([("model", m, [f"model={m}"]) for m in options("model")] + [("data", d, [f"data={d}"]) for d in options("data")]
         + [(g, o, [f"{g}={o}"]) for g in ("trainer", "logger", "callbacks", "debug", "experiment", "hparams_search")
            for o in options(g)])


def working_pair(group: str, overrides: list[str], own_data, tmp_path) -> list[str]:
    """``overrides`` with a data option the model can learn from, or a model that can learn the data."""
    from experiments.config.pairing import check_declared_pairing, data_declaration

    option = overrides[0].split("=", 1)[1]
    if group == "data":
        data = data_declaration(compose_run([*overrides, *own_data.overrides(option)], tmp_path).data)
        return [*overrides, *own_data.overrides(option), "model=mlp" if data.classification else "model=linear"]
    if group != "model":
        return overrides
    for data in ("fashion", "xor", "regression"):
        try:
            check_declared_pairing(compose_run([*overrides, f"data={data}"], tmp_path), {})
            return [*overrides, f"data={data}"]
        except ConfigError:
            continue
    raise AssertionError(f"{overrides}: no data option it can learn from")


def targets(node: DictConfig, path: str = ""):
    if "_target_" in node:
        yield path, node._target_
    for key in node:
        if isinstance(node.get(key), DictConfig):
            yield from targets(node[key], f"{path}.{key}" if path else key)


@pytest.mark.parametrize("group,option,overrides", PAIRS, ids=[f"{g}={o}" for g, o, _ in PAIRS])
def test_every_config_validates_and_instantiates(group, option, overrides, tmp_path, own_data):
    """Every object of every config is built (optimizers and schedulers called), so a wrong argument
    name in any YAML fails here; every object the model, data and trainer build is checked before:
    the project's own classes by a schema (the fast check), any other (yours) by its signature."""
    from experiments.config.signatures import arguments_of
    from experiments.pipeline import instantiate_all

    cfg = compose_run(working_pair(group, overrides, own_data, tmp_path), tmp_path)  # on the CPU (tests.conftest.QUIET)
    validate_config(cfg, this_machine=option != "ddp_slurm")  # a SLURM job counts its nodes' devices
    for path, target in targets(cfg):
        if path == "trainer" or path.split(".")[0] in ("model", "data"):
            own = target.split(".")[0] in ("lightning_modules", "datamodules", "lightning")
            assert target in SCHEMAS if own else arguments_of(target) is not None, (
                f"{path}: {target} has no schema in experiments/config/schema.py" if own
                else f"{path}: {target}'s signature cannot be read")
    model = instantiate(cfg.model, _convert_="object")
    instantiate(cfg.data, _convert_="object")
    optimizer = model.optimizer_factory(model.parameters())
    if model.scheduler_factory is not None:
        extra = {"total_steps": 10} if "total_steps" in inspect.signature(model.scheduler_factory).parameters else {}
        model.scheduler_factory(optimizer, **extra)
    instantiate_all(cfg.get("callbacks"))
    instantiate_all(cfg.get("logger"))
    instantiate(cfg.trainer, logger=False)


@pytest.mark.parametrize("config_name,groups", [("run", None), ("evaluate", {"data", "trainer", "logger", "paths"}),
                                                 ("predict", {"data", "trainer", "paths"})])
def test_help_lists_only_what_the_script_takes(config_name, groups, tmp_path):
    proc = subprocess.run([sys.executable, f"experiments/{config_name}.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PROJECT_ROOT": str(ROOT)})
    assert proc.returncode == 0 and f"Usage: python experiments/{config_name}.py" in proc.stdout
    listed = {line.split(": ", 1)[0]: line.split(": ", 1)[1].split(", ") for line in proc.stdout.splitlines()
              if ": " in line and line.split(": ", 1)[0] in {p.name for p in CONF.iterdir() if p.is_dir()}}
    if groups is not None:
        assert set(listed) == groups
    for group, opts in listed.items():
        assert opts == options(group)
        compose_run([f"{group}={opts[0]}"], tmp_path, config_name=config_name)  # accepted
    if config_name == "predict":
        assert "split: which part of the data to predict: test (the default), val" in proc.stdout


@pytest.mark.parametrize("overrides", [["experiment=xor"], ["model=linear", "data=regression"],
                                       ["model=linear", "data=regression", "model.loss=mse"],
                                       ["experiment=two_layer_manual"]])
def test_monitorable_metrics_are_those_a_fit_logs(overrides, tmp_path):
    from experiments.pipeline import build, make_trainer

    cfg = compose_run([*overrides, "trainer.max_epochs=1", "test=false", "logger=none", "callbacks=none",
                       "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.check_val_every_n_epoch=1"],
                      tmp_path)
    model, datamodule = build(cfg)
    trainer = make_trainer(cfg)
    trainer.fit(model, datamodule=datamodule)
    # train/loss_step comes only on the steps the loggers write: not a metric to monitor
    assert set(trainer.callback_metrics) - {"train/loss_step"} == logged_during_fit(cfg.model)


def test_a_sweep_is_refused_only_when_every_job_would_fail(tmp_path, capsys):
    for args, message in ((["-m", "model.optimizer.lr=-1", "seed=1,2"], "model.optimizer.lr=-1 is not allowed"),
                          (["-m", "model.optimizer.lr=-1,-2"], "model.optimizer.lr=-1 is not allowed"),
                          (["-m", "trainer.max_epoch=1,2"], "Did you mean trainer.max_epochs?")):
        with pytest.raises(SystemExit) as exit_:
            check_command_line("run", args)
        assert exit_.value.code == 1 and message in capsys.readouterr().err
    check_command_line("run", ["-m", "model.optimizer.lr=-1,0.1"])  # a failed row for one job, not a refused sweep
    check_command_line("run", ["-m", "model=mlp,cnn", "model.net.dropout=0.1"])  # mlp has a dropout
    check_command_line("run", ["-m", "model.optimizer.lr=interval(0.01,0.1)"])  # drawn by the sweeper: jobs check
    check_command_line("run", ["-m", "hydra/launcher=slurm", "trainer=ddp_slurm"])  # the cluster's GPUs, not ours
    with pytest.raises(ConfigError):
        validate_config(compose_run(["model.optimizer.lr=-1"], tmp_path))
