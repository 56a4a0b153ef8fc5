"""seed=N (0 included) fixes a run; deterministic=true makes it bit-identical on CPU."""

from experiments.pipeline import fit_and_test
from tests.conftest import compose_run

BASE = ["experiment=xor", "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=1",
        "data.train_size=500", "trainer.deterministic=true", "logger=none", "callbacks=none",
        "+trainer.enable_checkpointing=false"]


def val_loss(tmp_path, seed):
    return fit_and_test(compose_run([*BASE, f"seed={seed}"], tmp_path))["val/loss"]


def test_same_seed_gives_identical_metrics(tmp_path):
    assert val_loss(tmp_path / "a", 7) == val_loss(tmp_path / "b", 7)


def test_seed_zero_is_honoured(tmp_path):
    zero_a, zero_b, one = val_loss(tmp_path / "a", 0), val_loss(tmp_path / "b", 0), val_loss(tmp_path / "c", 1)
    assert zero_a == zero_b
    assert zero_a != one
