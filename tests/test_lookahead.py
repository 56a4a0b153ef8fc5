"""callbacks=lookahead: every few steps the net continues from a slow average of its state, and a
resumed run goes on exactly."""

from types import SimpleNamespace

import pytest
import torch
from lightning import Callback
from torch import nn

from experiments import pipeline
from lightning_modules.callbacks import Lookahead
from tests.conftest import compose_run


def module_with_net():
    torch.manual_seed(0)
    return SimpleNamespace(net=nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))


def at_step(callback, module, step, total=20):
    trainer = SimpleNamespace(global_step=step, estimated_stepping_batches=total)
    callback.on_train_batch_end(trainer, module, None, None, 0)


def test_lookahead_moves_the_net_to_the_slow_average_on_its_schedule():
    module, look = module_with_net(), Lookahead(every_n_steps=5, max_decay=0.8, power=3)
    state = module.net.state_dict()
    at_step(look, module, 5)  # the first update: the slow copy starts as the net
    slow = {k: v.clone() for k, v in state.items()}
    with torch.no_grad():  # training moves the weights and the BatchNorm statistics
        for key in ("0.weight", "1.running_mean"):
            state[key].add_(1.0)
    fast = {k: v.clone() for k, v in state.items()}
    at_step(look, module, 7)
    assert torch.equal(state["0.weight"], fast["0.weight"]), "no update between every_n_steps"

    at_step(look, module, 10)
    decay = 0.8 * (10 / 20) ** 3
    for key in ("0.weight", "1.running_mean", "0.bias"):
        want = slow[key] + (1 - decay) * (fast[key] - slow[key])
        assert torch.allclose(state[key], want), key
        assert torch.equal(look.slow[key], state[key]), "the net continues from the slow copy"
    assert "1.num_batches_tracked" not in look.slow, "integer state is not averaged"

    before_last = {k: v.clone() for k, v in look.slow.items()}
    with torch.no_grad():
        state["0.weight"].add_(5.0)
    at_step(look, module, 20)  # the last step: the net takes the slow copy
    assert torch.equal(state["0.weight"], before_last["0.weight"])


def test_lookahead_without_an_end_keeps_its_largest_decay():
    module, look = module_with_net(), Lookahead(every_n_steps=5, max_decay=0.8)
    state = module.net.state_dict()
    at_step(look, module, 5, total=float("inf"))
    slow = state["0.weight"].clone()
    with torch.no_grad():
        state["0.weight"].add_(1.0)
    at_step(look, module, 10, total=float("inf"))
    assert torch.allclose(state["0.weight"], slow + 0.2)


def test_lookahead_checks_its_arguments():
    for kwargs in ({"every_n_steps": 0}, {"max_decay": 1.0}, {"power": -1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Lookahead(**kwargs)


class StopAfterFirstEpoch(Callback):
    """An interruption at the end of epoch 0 (after its checkpoint), the schedule left unchanged."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_a_resumed_lookahead_run_gives_the_uninterrupted_weights(fake_fashion, tmp_path):
    common = ["experiment=fashion_fast", *fake_fashion, "callbacks=lookahead", "callbacks.lookahead.every_n_steps=3",
              "data.batch_size=64", "data.eval_batch_size=100", "test=false", "trainer.max_epochs=2"]
    pipeline.fit_and_test(compose_run(common, tmp_path / "whole"))
    pipeline.fit_and_test(compose_run([*common, f"+callbacks.stop._target_={__name__}.StopAfterFirstEpoch"],
                                      tmp_path / "first"))
    first = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0
    assert any(isinstance(s, dict) and "slow" in s for s in first["callbacks"].values()), "the slow copy is saved"
    pipeline.fit_and_test(compose_run([*common, f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"],
                                      tmp_path / "resumed"))
    want = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    got = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in want.items():
        assert torch.equal(value, got[key]), key
