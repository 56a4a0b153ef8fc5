"""experiment=two_layer_manual: the tutorial's hand-written backward pass, trained through
Lightning's manual optimization."""

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.pipeline import fit_and_test
from lightning_modules.manual_backprop import forward_and_gradients
from lightning_modules.nets import TwoLayerNet
from tests.conftest import compose_run


def test_hand_written_gradients_equal_autograds():
    torch.manual_seed(0)
    net = TwoLayerNet().double()
    x, y = torch.randn(64, 1000, dtype=torch.float64), torch.randn(64, 10, dtype=torch.float64)
    with torch.no_grad():
        loss, preds, grads = forward_and_gradients(net, x, y)

    expected_loss = torch.nn.functional.mse_loss(net(x), y, reduction="sum")
    expected_loss.backward()
    assert torch.allclose(loss, expected_loss.detach(), rtol=0, atol=1e-9)
    assert torch.allclose(preds, net(x).detach(), rtol=0, atol=1e-12)
    assert set(grads) == {name for name, _ in net.named_parameters()}
    for name, parameter in net.named_parameters():
        difference = (grads[name] - parameter.grad).abs().max().item()
        assert difference < 1e-6, (name, difference)
        assert parameter.grad.abs().max() > 1e-3  # a real gradient, not zeros on both sides


def test_two_layer_manual_fits_random_data_like_the_tutorial(tmp_path):
    cfg = compose_run(["experiment=two_layer_manual", "trainer.log_every_n_steps=1"], tmp_path)
    assert (cfg.model.optimizer._target_, cfg.model.optimizer.lr, cfg.trainer.max_epochs) == ("torch.optim.SGD", 1e-4, 500)
    metrics = fit_and_test(cfg)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss_step")]
    assert len(losses) == 500  # one full-batch step per epoch
    assert losses[-1] < 0.01 * losses[0], (losses[0], losses[-1])
    assert metrics["test/loss"] < 0.01 * losses[0]  # the 64 training points, with the best checkpoint


def test_manual_and_autograd_runs_take_the_same_steps(tmp_path):
    """The same seed, data and SGD give the same weights whichever way the gradients came."""
    weights = {}
    for model in ("two_layer", "two_layer_manual"):
        cfg = compose_run([f"model={model}", "data=regression", "data.generator=random", "data.batch_size=64",
                           "model.optimizer._target_=torch.optim.SGD", "model.optimizer.lr=1e-4",
                           "trainer.max_epochs=20", "trainer.log_every_n_steps=1", "test=false"], tmp_path / model)
        fit_and_test(cfg)
        events = EventAccumulator(str(tmp_path / model))
        events.Reload()
        losses = [e.value for e in events.Scalars("train/loss_step")]
        assert len(losses) == 20 and losses[-1] < 0.5 * losses[0], losses  # both trained
        weights[model] = torch.load(tmp_path / model / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name in ("net.layers.0.weight", "net.layers.0.bias", "net.layers.2.weight", "net.layers.2.bias"):
        torch.testing.assert_close(weights["two_layer_manual"][name], weights["two_layer"][name], rtol=1e-4, atol=1e-5)
