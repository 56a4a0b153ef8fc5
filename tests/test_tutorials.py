"""The seed tutorials reach the results their authors reported."""

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.pipeline import fit_and_test
from tests.conftest import compose_run


def test_xor_reaches_full_test_accuracy(tmp_path):
    metrics = fit_and_test(compose_run(["experiment=xor"], tmp_path))
    assert metrics["test/acc"] == 1.0
    assert metrics["val/acc_best"] == 1.0


def test_linear_regression_recovers_weight_and_bias(tmp_path):
    metrics = fit_and_test(compose_run(["experiment=linear"], tmp_path))
    state = torch.load(metrics["best_model_path"], weights_only=True)["state_dict"]
    assert abs(state["net.linear.weight"].item() - 0.7) < 0.02
    assert abs(state["net.linear.bias"].item() - 0.3) < 0.02
    assert metrics["test/loss"] < 0.02  # the L1 loss: the mean absolute error


def test_two_layer_net_fits_random_data(tmp_path):
    fit_and_test(compose_run(["experiment=two_layer", "trainer.log_every_n_steps=1"], tmp_path))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss_step")]
    assert len(losses) == 500
    assert losses[-1] < 0.01 * losses[0], (losses[0], losses[-1])
