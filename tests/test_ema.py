"""callbacks=ema: the moving average of the weights is what is validated, saved and tested."""

import pytest
import torch

from experiments import pipeline
from tests.conftest import compose_run


def test_ema_checkpoints_and_tests_the_averaged_weights(fake_fashion, tmp_path):
    cfg = compose_run(["experiment=fashion_fast", *fake_fashion, "callbacks=ema", "callbacks.ema.decay=0.9",
                       "data.batch_size=64", "data.eval_batch_size=100", "trainer.max_epochs=2"], tmp_path / "run")
    metrics = pipeline.fit_and_test(cfg)

    checkpoint = torch.load(metrics["best_model_path"], weights_only=True)
    average, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert "n_averaged" in checkpoint["averaging_state"]
    assert average.keys() == raw.keys()
    assert any(not torch.equal(average[k], raw[k]) for k in average if average[k].is_floating_point())

    # evaluate.py rebuilds the model from the checkpoint's state_dict, the average: the test after
    # fit must have tested the same weights (Lightning's own callback would test the raw ones).
    evaluated = pipeline.evaluate(compose_run([f"ckpt_path={metrics['best_model_path']}"], tmp_path / "eval",
                                              config_name="evaluate"))
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"])


def test_ema_without_the_fix_would_differ(fake_fashion, tmp_path, monkeypatch):
    """The test above can fail: with Lightning's own on_load_checkpoint the tested weights change."""
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from lightning_modules.callbacks import EMAWeightAveraging as Fixed

    monkeypatch.setattr(Fixed, "on_load_checkpoint", EMAWeightAveraging.on_load_checkpoint)
    cfg = compose_run(["experiment=fashion_fast", *fake_fashion, "callbacks=ema", "callbacks.ema.decay=0.9",
                       "data.batch_size=64", "data.eval_batch_size=100", "trainer.max_epochs=2"], tmp_path / "run")
    metrics = pipeline.fit_and_test(cfg)
    evaluated = pipeline.evaluate(compose_run([f"ckpt_path={metrics['best_model_path']}"], tmp_path / "eval",
                                              config_name="evaluate"))
    assert evaluated["test/loss"] != pytest.approx(metrics["test/loss"], rel=1e-5)
