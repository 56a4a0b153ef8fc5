"""Every config composes; bad values and impossible pairings fail before training."""

import pytest
from hydra.errors import ConfigCompositionException

from experiments.config.checks import validate_config
from experiments.config.errors import ConfigError
from experiments.pipeline import build
from tests.conftest import CONF, compose_run

GROUPS = ["model", "data", "trainer", "logger", "callbacks", "paths", "experiment", "debug", "hparams_search"]


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_config_composes(group, option, tmp_path):
    cfg = compose_run([f"{group}={option}"], tmp_path)
    for key in ("model", "data", "trainer", "paths"):
        assert "_target_" in cfg[key] or key == "paths", f"{group}={option} lost {key}"
    assert cfg.paths.output_dir == str(tmp_path)


def test_default_run_is_cnn_on_fashion(tmp_path):
    cfg = compose_run([], tmp_path)
    assert cfg.model.net._target_.endswith("LeNet")
    assert cfg.data._target_.endswith("FashionMNISTDataModule")
    assert cfg.train and cfg.test and cfg.seed == 42


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=cnn", "data=xor"], "model=cnn cannot train on data=xor: LeNet takes its in_channels from the data, "
                                    "the channels of image inputs [C, H, W], but XORDataModule gives inputs of shape [2]"),
        (["model=xor", "data=regression"], "learns binary/multiclass targets"),
        (["model=xor", "data=fashion"], "SimpleClassifier takes its num_inputs from the data, the width of flat inputs "
                                        "[F], but FashionMNISTDataModule gives inputs of shape [1, 28, 28]"),
        (["model=convnet", "data=regression"], "ClassificationModule learns binary/multiclass targets, but "
                                               "RegressionDataModule gives regression targets"),
        # a value typed over the link: found on the built objects
        (["model=linear", "data=regression", "data.generator=random", "model.net.in_features=3"],
         "LinearRegressor takes inputs of shape [3], but RegressionDataModule gives [1000]"),
        (["model=mlp", "data=fashion", "model.net.num_classes=7"], "the net gives 7 outputs"),
    ],
)
def test_impossible_pairing_fails_with_reason(overrides, message, tmp_path):
    cfg = compose_run(overrides, tmp_path)
    with pytest.raises(ConfigError, match="cannot train on") as err:
        build(cfg)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "override,message",
    [
        ("seed=-1", "seed=-1 is not allowed"),
        ("seed=1.5", "seed=1.5 is not allowed"),
        ("trainer.precision=17", "trainer.precision=17 is not allowed: trainer.precision takes one of 64, 32"),
        ("trainer.accelerator=tpu", "trainer.accelerator=tpu is not allowed"),
        ("monitor.mode=up", "monitor.mode=up is not allowed"),
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' is not allowed: trainer.max_epochs takes an integer"),
        ("data.batch_size=1.5", "data.batch_size=1.5 is not allowed: data.batch_size takes an integer"),
        ("model.optimizer.lr=0", "model.optimizer.lr=0 is not allowed: a learning rate is a finite number > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is not allowed"),
        ("trainer.devices=64", "trainer.devices=64 is not allowed: this machine has"),
        ("monitor.metric=val/mse", "monitor.metric=val/mse is not allowed: lightning_modules.ClassificationModule does not log it"),
        ("+trainer.max_epoch=3", "trainer.max_epoch is not a setting (lightning.pytorch.Trainer has no argument 'max_epoch'). Did you mean trainer.max_epochs?"),
        ("+data.batchsize=3", "Did you mean data.batch_size?"),
    ],
)
def test_bad_values_are_named(override, message, tmp_path):
    cfg = compose_run([override], tmp_path)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert message in str(err.value)


def test_seed_zero_is_a_seed(tmp_path):
    validate_config(compose_run(["seed=0"], tmp_path))


def test_unknown_group_option_is_rejected(tmp_path):
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_run(["model=resnet9000"], tmp_path)


def test_bad_generator_is_named(tmp_path):
    cfg = compose_run(["model=linear", "data=regression", "data.generator=cubic"], tmp_path)
    with pytest.raises(Exception, match="data.generator='cubic' is unknown; allowed: \\['linear', 'noisy', 'random'\\]"):
        build(cfg)


@pytest.mark.parametrize("model", options("model"))
def test_monitor_defaults_to_the_task_modules_own(model, tmp_path):
    from hydra.utils import get_class

    from lightning_modules.task_table import TASKS

    cfg = compose_run([f"model={model}"], tmp_path)
    task = get_class(cfg.model._target_).task
    assert TASKS[cfg.model._target_] is task, "the task table names the task module's own task"
    assert (cfg.monitor.metric, cfg.monitor.mode) == task.monitor, "printed and recorded as monitored"
