"""The Fashion-MNIST recipes compose, build, and train a few steps (on small generated IDX files,
so the test needs neither the real data nor much time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from experiments import pipeline
from tests.conftest import compose_run


@pytest.mark.parametrize("recipe", ["fashion_fast", "fashion_best", "fashion_seed"])
def test_recipe_composes_and_builds(recipe, tmp_path):
    cfg = compose_run([f"experiment={recipe}"], tmp_path)
    assert cfg.task_name == "train", "every run is written under logs/train (an experiment names its run folder)"
    model = instantiate(cfg.model, _convert_="object")
    x = torch.zeros(2, 1, 28, 28)
    if cfg.data.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert model.net.eval()(x).shape == (2, 10)


def test_fast_and_best_use_nhwc_and_best_augments(tmp_path):
    fast = compose_run(["experiment=fashion_fast"], tmp_path)
    best = compose_run(["experiment=fashion_best"], tmp_path)
    for cfg in (fast, best):
        assert cfg.data.channels_last and cfg.model.net.channels_last
        assert cfg.model.scheduler.total_steps is None  # filled in from the trainer
    assert fast.data.augment.alternate_flip and not fast.data.augment.get("crop_padding")
    assert best.data.augment.crop_padding > 0 and best.data.augment.hflip_p > 0
    net = instantiate(best.model.net)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fashion_fast_trains_a_few_steps(fake_fashion, tmp_path):
    cfg = compose_run(["experiment=fashion_fast", *fake_fashion, "data.batch_size=64", "data.eval_batch_size=100",
                       "trainer.max_epochs=2", "trainer.limit_train_batches=8", "trainer.log_every_n_steps=1"],
                      tmp_path / "run")
    metrics = pipeline.fit_and_test(cfg)
    assert metrics["test/acc"] > 0.2, metrics  # 10 classes: better than chance after 16 steps
    assert metrics["train/loss"] < 2.3
    assert Path(metrics["best_model_path"]).is_file()


def test_augmentation_runs_in_training_only(fake_fashion, tmp_path):
    """data=fashion_augmented augments training batches, never validation/test ones."""
    cfg = compose_run(["experiment=fashion_best", *fake_fashion], tmp_path)
    dm = instantiate(cfg.data, _convert_="object")
    dm.setup()
    x, y = dm.splits["val"][0][:8], dm.splits["val"][1][:8]

    class FakeTrainer:
        training = False
        current_epoch = 0

    dm.trainer = FakeTrainer()
    clean = dm.on_after_batch_transfer((x, y), 0)[0]
    assert torch.equal(clean, dm.normalize(x))
    assert clean.is_contiguous(memory_format=torch.channels_last)
    FakeTrainer.training = True
    torch.manual_seed(0)
    augmented = dm.on_after_batch_transfer((x, y), 0)[0]
    assert augmented.shape == clean.shape and not torch.equal(augmented, clean)


def test_vggnet_flip_tta_averages_the_mirror_in_eval_only():
    from lightning_modules.nets import VGGNet

    torch.manual_seed(0)
    net = VGGNet(channels=[4, 8], convs=[1, 1], flip_tta=True)
    plain = VGGNet(channels=[4, 8], convs=[1, 1])
    plain.load_state_dict(net.state_dict())
    x = torch.randn(3, 1, 28, 28)
    net.eval(), plain.eval()
    with torch.no_grad():
        expected = (plain(x) + plain(x.flip(-1))) / 2
        assert torch.allclose(net(x), expected, atol=1e-6)
    net.train(), plain.train()
    torch.manual_seed(1)
    a = net(x)
    torch.manual_seed(1)
    assert torch.allclose(a, plain(x))  # training: one forward, no mirror
    with pytest.raises(ValueError):
        VGGNet(channels=[4, 8], convs=[1])


def test_vggnet_pool_first_pools_before_norm_and_keeps_shapes():
    from lightning_modules.nets import VGGNet

    net = VGGNet(channels=[4, 8], convs=[1, 2], pool_first=True)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU",
                     "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert [type(m).__name__ for m in VGGNet(channels=[4], convs=[1]).features] == \
        ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
