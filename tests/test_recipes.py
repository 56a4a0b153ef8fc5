"""The Fashion-MNIST recipes compose, build, and train a few steps (on small generated IDX files,
so the test needs neither the real data nor much time)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


def write_idx(raw: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> None:
    """Tiny Fashion-MNIST look-alike in the IDX format torchvision reads."""
    g = torch.Generator().manual_seed(seed)
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        # Class-dependent brightness so that a few steps can learn something.
        images = (torch.rand(n, 28, 28, generator=g) * 100 + labels[:, None, None].float() * 15).to(torch.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.numpy().tobytes())


def compose_run(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="run", overrides=overrides)


@pytest.fixture
def fake_data(tmp_path):
    write_idx(tmp_path / "data" / "FashionMNIST" / "raw")
    return tmp_path


@pytest.mark.parametrize("recipe", ["fashion_fast", "fashion_best", "fashion_seed"])
def test_recipe_composes_and_builds(recipe, tmp_path):
    cfg = compose_run([f"experiment={recipe}", f"paths.output_dir={tmp_path}"])
    assert cfg.task_name == recipe
    model = instantiate(cfg.model, _convert_="object")
    x = torch.zeros(2, 1, 28, 28)
    if cfg.data.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert model.net.eval()(x).shape == (2, 10)


def test_fast_and_best_use_nhwc_and_best_augments(tmp_path):
    fast = compose_run(["experiment=fashion_fast", f"paths.output_dir={tmp_path}"])
    best = compose_run(["experiment=fashion_best", f"paths.output_dir={tmp_path}"])
    for cfg in (fast, best):
        assert cfg.data.channels_last and cfg.model.net.channels_last
        assert cfg.model.scheduler.total_steps is None  # filled in from the trainer
    assert fast.data.augment is None
    assert best.data.augment.crop_padding > 0 and best.data.augment.hflip_p > 0
    net = instantiate(best.model.net)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fashion_fast_trains_a_few_steps(fake_data):
    from experiments import pipeline

    cfg = compose_run([
        "experiment=fashion_fast",
        f"paths.data_dir={fake_data / 'data'}",
        f"paths.output_dir={fake_data / 'run'}",
        "data.val_size=100", "data.batch_size=64", "data.eval_batch_size=100",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=8", "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
    ])
    metrics = pipeline.train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert torch.isfinite(torch.tensor(metrics["train/loss_epoch"] if "train/loss_epoch" in metrics
                                       else metrics["val/loss"]))
    assert Path(metrics["best_model_path"]).is_file()


def test_augmentation_runs_in_training_only(fake_data):
    """data=fashion_augmented augments training batches, never validation/test ones."""
    cfg = compose_run(["experiment=fashion_best", f"paths.data_dir={fake_data / 'data'}",
                       f"paths.output_dir={fake_data / 'run'}", "data.val_size=100"])
    dm = instantiate(cfg.data, _convert_="object")
    dm.setup()
    x, y = dm.splits["val"][0][:8], dm.splits["val"][1][:8]

    class FakeTrainer:
        training = False

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
