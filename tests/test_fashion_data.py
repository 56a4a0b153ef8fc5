"""Fashion-MNIST: sources, splits, dtypes and per-batch normalisation."""

import gzip
from types import SimpleNamespace

import pytest
import torch

from datamodules import BatchAugment, FashionMNISTDataModule, FashionMNISTUnavailable
from datamodules.fashion_mnist import RAW_FILES, ensure_raw_files
from tests.conftest import DEBIAN_FASHION


def test_small_idx_files_load_as_uint8_tensors(fake_fashion_dir, tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), debian_dir=str(fake_fashion_dir), val_size=100,
                                download=False, batch_size=32)
    dm.prepare_data()
    assert all((tmp_path / "FashionMNIST" / "raw" / f).is_file() for f in RAW_FILES)
    dm.setup("fit")
    x, y = dm.splits["train"]
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (500,) and y.dtype == torch.int64
    assert len(dm.splits["val"][0]) == 100 and len(dm.splits["test"][0]) == 200
    assert len(dm.class_names) == 10 and dm.class_names[0] == "T-shirt/top"

    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (32, 1, 28, 28) and batch[0].dtype == torch.uint8
    xb, yb = dm.on_after_batch_transfer(batch, 0)
    assert xb.dtype == torch.float32 and torch.equal(yb, batch[1])
    (mean,), (std,) = dm.normalization["mean"], dm.normalization["std"]
    expected = (batch[0].float() / 255 - mean) / std
    torch.testing.assert_close(xb, expected)
    assert len(dm.train_dataloader()) == 16  # ceil(500 / 32)


def test_val_and_train_are_disjoint_and_seeded(fake_fashion_dir, tmp_path):
    def splits(seed):
        dm = FashionMNISTDataModule(data_dir=str(tmp_path), debian_dir=str(fake_fashion_dir), val_size=100,
                                    split_seed=seed, download=False)
        dm.setup()
        return dm.splits

    a, b, c = splits(1), splits(1), splits(2)
    assert torch.equal(a["val"][0], b["val"][0])
    assert not torch.equal(a["val"][0], c["val"][0])
    train_rows = {bytes(t.numpy()) for t in a["train"][0]}
    assert not any(bytes(v.numpy()) in train_rows for v in a["val"][0][:20])


def test_augmentation_only_while_training(fake_fashion_dir, tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), debian_dir=str(fake_fashion_dir), val_size=100,
                                download=False, augment=BatchAugment(crop_padding=2, hflip_p=1.0))
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    plain = dm.on_after_batch_transfer(batch, 0)[0]  # no trainer attached: no augmentation
    torch.testing.assert_close(plain, dm.normalize(batch[0]))


def test_training_crops_pad_with_black_not_the_mean_pixel(fake_fashion_dir, tmp_path):
    """Crops come after normalisation, where 0 is the mean pixel: a grey frame around the black
    background that no test image has. They pad with what a black pixel becomes."""
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), debian_dir=str(fake_fashion_dir), val_size=100,
                                download=False, batch_size=64, augment=BatchAugment(crop_padding=2))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True, current_epoch=0)  # what the hook reads of a fitting trainer
    batch = (torch.full_like(batch[0], 255), batch[1])  # white images: any other value is padding
    x = dm.on_after_batch_transfer(batch, 0)[0]
    black = dm.normalize(torch.zeros(1, 1, 1, 1, dtype=torch.uint8)).item()
    white = dm.normalize(torch.full((1, 1, 1, 1), 255, dtype=torch.uint8)).item()
    padding = x[x != white]
    assert len(padding) and torch.equal(padding, torch.full_like(padding, black))
    assert black < -0.5, "black is below the mean pixel (0) after normalisation"


def test_missing_data_names_both_ways(tmp_path):
    with pytest.raises(FashionMNISTUnavailable) as err:
        ensure_raw_files(tmp_path / "data", debian_dir=tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data.download=true" in message
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message


def test_partial_unpack_is_not_mistaken_for_data(fake_fashion_dir, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"")  # an earlier run died half-way
    assert ensure_raw_files(tmp_path, fake_fashion_dir, download=False) == "debian"
    with gzip.open(fake_fashion_dir / "t10k-labels-idx1-ubyte.gz") as f:
        assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == f.read()


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_files(tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), download=False)
    dm.prepare_data()
    dm.setup()
    sizes = {k: len(v[0]) for k, v in dm.splits.items()}
    assert sizes == {"train": 55000, "val": 5000, "test": 10000}
    assert dm.splits["train"][1].bincount().tolist() == pytest.approx([5500] * 10, rel=0.03)
    images = torch.cat([dm.splits["train"][0], dm.splits["val"][0]])
    (mean,), (std,) = dm.normalization["mean"], dm.normalization["std"]
    train_x = images.float() / 255
    assert train_x.mean().item() == pytest.approx(mean, abs=1e-3)
    assert train_x.std().item() == pytest.approx(std, abs=1e-3)
    from datamodules.image_folder import ImageFolderDataModule  # an image folder's statistics: the same numbers

    computed = ImageFolderDataModule.statistics(images)
    assert computed["mean"][0] == pytest.approx(mean, abs=1e-3) and computed["std"][0] == pytest.approx(std, abs=1e-3)
    xb, _ = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert abs(xb.mean().item()) < 0.2 and 0.8 < xb.std().item() < 1.2


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_two_processes_unpacking_at_once_both_get_whole_files(tmp_path):
    """Two runs started together on a fresh clone both unpack the Debian files into one folder."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = f"from datamodules.fashion_mnist import ensure_raw_files; print(ensure_raw_files({str(tmp_path)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    raw = tmp_path / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_FILES), "no temporary file left"
    with gzip.open(DEBIAN_FASHION / "train-images-idx3-ubyte.gz") as f:
        assert (raw / "train-images-idx3-ubyte").read_bytes() == f.read()
