"""The README's `model=X data=Y` commands learn under the default trainer settings (10 epochs),
without an experiment recipe. These models are small enough to train at their real defaults."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.pipeline import fit_and_test
from tests.conftest import compose_run


def fitted_line(metrics) -> tuple[float, float]:
    state = torch.load(metrics["best_model_path"], weights_only=True)["state_dict"]
    return state["net.linear.weight"].item(), state["net.linear.bias"].item()


@pytest.mark.parametrize("seed", [42, 1])
def test_xor_default_reaches_full_accuracy(seed, tmp_path):
    cfg = compose_run(["model=xor", "data=xor", f"seed={seed}"], tmp_path)
    assert cfg.trainer.max_epochs == 10  # the default, not a recipe
    metrics = fit_and_test(cfg)
    assert metrics["test/acc"] >= 0.99, metrics


def test_linear_default_recovers_weight_and_bias(tmp_path):
    metrics = fit_and_test(compose_run(["model=linear", "data=regression"], tmp_path))
    w, b = fitted_line(metrics)
    assert abs(w - 0.7) < 0.05 and abs(b - 0.3) < 0.05, (w, b)


def test_linear_default_fits_noisy_data(tmp_path):
    # y = x + 3 N(0,1): the least-absolute-deviation line of these 160 training points is
    # w = 1.02, b = 0.56; the noise (std of b ~ 0.25) decides b, the slope is well determined.
    metrics = fit_and_test(compose_run(["model=linear", "data=regression", "data.generator=noisy"], tmp_path))
    w, b = fitted_line(metrics)
    assert abs(w - 1.0) < 0.15 and abs(b) < 1.0, (w, b)


def test_two_layer_default_fits_random_data(tmp_path):
    fit_and_test(compose_run(["model=two_layer", "data=regression", "data.generator=random",
                       "trainer.log_every_n_steps=1"], tmp_path))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss_step")]
    assert len(losses) == 10 * 64 // 8  # 10 epochs of 8 batches
    assert losses[-1] < 0.01 * losses[0], (losses[0], losses[-1])


def test_recipes_keep_the_tutorials_optimizers(tmp_path):
    """The defaults changed for the short default run; experiment= recipes pin the tutorials'."""
    expected = {"xor": ("torch.optim.SGD", 0.1, 128), "linear": ("torch.optim.SGD", 0.01, 40),
                "two_layer": ("torch.optim.SGD", 1.0e-4, 64)}
    for name, (optimizer, lr, batch_size) in expected.items():
        cfg = compose_run([f"experiment={name}"], tmp_path)
        assert (cfg.model.optimizer._target_, cfg.model.optimizer.lr, cfg.data.batch_size) == (optimizer, lr, batch_size)
        assert cfg.model.optimizer.get("momentum", 0.0) == 0.0
