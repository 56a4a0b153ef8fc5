"""Every documented model/data pairing trains one batch end to end and logs to TensorBoard."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from experiments.pipeline import fit_and_test
from tests.conftest import compose_run

CLASSIFICATION_TAGS = {"train/loss_step", "train/loss", "train/acc", "val/loss", "val/acc",
                       "val/acc_best", "test/loss", "test/acc"}
REGRESSION_TAGS = {"train/loss_step", "train/loss", "train/mse", "val/loss", "val/mse",  # L1 loss: no mae
                   "val/loss_best", "test/loss", "test/mse"}

PAIRINGS = [
    (["model=cnn", "data=fashion"], CLASSIFICATION_TAGS),
    (["model=mlp", "data=fashion"], CLASSIFICATION_TAGS),
    (["model=convnet", "data=fashion"], CLASSIFICATION_TAGS),
    (["model=xor", "data=xor"], CLASSIFICATION_TAGS),
    (["model=linear", "data=regression"], REGRESSION_TAGS),
    (["model=linear", "data=regression", "data.generator=noisy"], REGRESSION_TAGS),
    (["model=two_layer", "data=regression", "data.generator=random"], REGRESSION_TAGS),
    # hand-written gradients (manual optimization); sum-of-squares loss, so both mse and mae
    (["model=two_layer_manual", "data=regression", "data.generator=random"],
     REGRESSION_TAGS | {"train/mae", "val/mae", "test/mae"}),
]


@pytest.mark.parametrize("overrides,tags", PAIRINGS, ids=lambda p: " ".join(p) if isinstance(p, list) else "")
def test_pairing_fast_dev_run_logs_scalars(overrides, tags, tmp_path, fake_fashion):
    extra = fake_fashion if "data=fashion" in overrides else []
    metrics = fit_and_test(compose_run([*overrides, *extra, "debug=fdr"], tmp_path))

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert tags <= set(events.Tags()["scalars"]), tags - set(events.Tags()["scalars"])
    assert events.Scalars(next(iter(sorted(tags))))  # values, not only tags
    # pictures: labelled validation images, for image data only
    assert ("val/predictions" in events.Tags()["images"]) == ("data=fashion" in overrides)

    # hparams view: the run's choices (a single run writes its session; a sweep the experiment)
    hparams = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["seed"].number_value == 42
    assert "model.optimizer.lr" in session.session_start_info.hparams
    assert session.session_start_info.hparams["model"].string_value == overrides[0].split("=")[1]

    # best and last checkpoint, loadable without unpickling arbitrary objects
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and len(ckpts) == 2, ckpts
    ckpt = torch.load(metrics["best_model_path"], weights_only=True)
    assert ckpt["run_config"]["model"]["_target_"].startswith("lightning_modules.")
    assert ckpt["run_config"]["data"]["_target_"].startswith("datamodules.")
