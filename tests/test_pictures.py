"""TensorBoard pictures (lightning_modules/pictures/): each run gets the pictures that fit its
data, in its TensorBoard events and as PNGs in its folder; none during the sanity check."""

from __future__ import annotations

import struct
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from experiments.pipeline import fit_and_test
from lightning_modules import ClassificationModule
from lightning_modules.nets import MLP
from lightning_modules.pictures import (
    ConfusionMatrixPicture,
    DecisionBoundary,
    ImagePredictionGrid,
    ModelGraph,
    RegressionFit,
    confusion_matrix,
    drawing,
    stage_picture,
)
from tests.conftest import compose_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def events_of(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    return events


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read from its header; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def final_step(folder: Path) -> int:
    """The run's last training step, from its last.ckpt."""
    return torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def assert_pictures(folder: Path, tags: set[str], min_side: int = 300) -> EventAccumulator:
    """``tags`` are exactly the run's image tags, each with a picture of every validated epoch
    (the last one also as a PNG of a readable size), and test pictures once."""
    events = events_of(folder)
    assert set(events.Tags()["images"]) == tags
    for tag in tags:
        width, height = png_size(folder / "pictures" / f"{tag.replace('/', '_')}.png")
        assert min_side <= width <= 1400 and min_side <= height <= 1400, (tag, width, height)
        image = events.Images(tag)[-1]
        assert (image.width, image.height) == (width, height), tag
    return events


def test_xor_run_draws_decision_boundary_confusion_matrices_and_graph(tmp_path):
    fit_and_test(compose_run(["experiment=xor", "trainer.max_epochs=2", "data.train_size=256"], tmp_path))
    events = assert_pictures(tmp_path, {"val/decision_boundary", "val/confusion_matrix",
                                        "test/decision_boundary", "test/confusion_matrix"})
    # the last epoch's always (earlier ones as the time budget allows), none for the sanity check
    assert [image.step for image in events.Images("val/decision_boundary")][-1:] == [final_step(tmp_path)]
    assert len(events.Images("val/decision_boundary")) <= 2 and len(events.Images("test/confusion_matrix")) == 1
    assert events.Tags()["graph"]  # the model graph, traced on a real sample
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == [
        "test_confusion_matrix.png", "test_decision_boundary.png", "val_confusion_matrix.png",
        "val_decision_boundary.png"]


@pytest.mark.parametrize("generator", ["linear", "random"])
def test_regression_run_draws_its_fit(generator, tmp_path):
    model = "model=linear" if generator == "linear" else "model=two_layer"
    fit_and_test(compose_run([model, "data=regression", f"data.generator={generator}", "trainer.max_epochs=2"], tmp_path))
    events = assert_pictures(tmp_path, {"val/fit", "test/fit"})
    assert [image.step for image in events.Images("val/fit")][-1:] == [final_step(tmp_path)]


def test_fashion_run_draws_labelled_images_and_confusion_matrices(tmp_path, fake_fashion):
    fit_and_test(compose_run(["model=mlp", "data=fashion", *fake_fashion, "trainer.max_epochs=1"], tmp_path))
    assert_pictures(tmp_path, {"val/predictions", "val/confusion_matrix", "test/predictions",
                               "test/confusion_matrix"})


def test_no_pictures_without_a_tensorboard_logger(tmp_path):
    fit_and_test(compose_run(["experiment=xor", "trainer.max_epochs=1", "logger=csv"], tmp_path))
    assert not (tmp_path / "pictures").exists()


class PointsDataModule(L.LightningDataModule):
    """Plain DataLoaders over 2-D points, declaring the data contract and nothing of the project."""

    input_shape, target_kind, num_classes = (2,), "binary", 2
    class_names = ["left", "right"]

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 2, generator=g)
        self.data = TensorDataset(x, (x[:, 0] > 0).long())

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=32, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=64)

    test_dataloader = val_dataloader


def test_pictures_work_with_a_dataloader_datamodule_and_skip_the_sanity_check(tmp_path):
    model = ClassificationModule(MLP(input_shape=[2], hidden=[8], num_classes=1),
                                 lambda params: torch.optim.Adam(params, lr=0.05), num_classes=2)
    callbacks = [DecisionBoundary(max_share=None), ConfusionMatrixPicture(max_share=None), RegressionFit(),
                 ImagePredictionGrid(), ModelGraph()]  # max_share=None: every validation
    trainer = L.Trainer(max_epochs=2, num_sanity_val_steps=2, default_root_dir=tmp_path, accelerator="cpu",
                        logger=TensorBoardLogger(tmp_path, name="", version=""), callbacks=callbacks,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    datamodule = PointsDataModule()
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule)
    events = assert_pictures(tmp_path, {"val/decision_boundary", "val/confusion_matrix",
                                        "test/decision_boundary", "test/confusion_matrix"})
    steps = [image.step for image in events.Images("val/decision_boundary")]
    assert steps == [8, 16], steps  # after each of the 2 epochs of 8 steps; nothing at step 0 (sanity check)


def test_prediction_grid_frames_each_tile_green_when_right_red_when_wrong():
    callback = ImagePredictionGrid(num_images=6, per_row=4, scale=2, font_size=10)
    images = torch.full((6, 1, 28, 28), 0.5)  # normalised floats: stretched for display
    targets = torch.arange(6)
    preds = targets.clone()
    preds[3] = 4  # one wrong
    grid = callback.grid(images, preds, targets, [f"c{i}" for i in range(6)])
    width, pad, caption = 28 * 2, callback.padding, 2 * 10 + 10
    height = width + caption
    assert grid.shape == (3, 2 * (height + pad) + pad, 4 * (width + pad) + pad)  # 6 tiles, 4 to a row
    for i in range(6):
        row, col = divmod(i, 4)
        y, x = pad + row * (height + pad), pad + col * (width + pad)
        bottom_right = grid[:, y + height - 1, x + width - 1].tolist()  # on the frame, clear of the caption
        assert bottom_right == ([255, 0, 0] if i == 3 else [0, 255, 0]), (i, bottom_right)


class UntraceableMLP(MLP):
    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("cannot trace this")
        return super().forward(x)


def test_untraceable_net_is_skipped_with_a_note_and_the_run_goes_on(tmp_path, caplog):
    model = ClassificationModule(UntraceableMLP(input_shape=[2], hidden=[8], num_classes=1),
                                 lambda params: torch.optim.Adam(params, lr=0.05), num_classes=2)
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, accelerator="cpu", enable_checkpointing=False,
                        logger=TensorBoardLogger(tmp_path, name="", version=""), callbacks=[ModelGraph()],
                        enable_progress_bar=False, enable_model_summary=False)
    with caplog.at_level("INFO", logger="lightning_modules.pictures"):
        trainer.fit(model, datamodule=PointsDataModule())
    assert trainer.state.finished and trainer.current_epoch == 1
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("lightning_modules.pictures")]
    assert notes == ["No model graph in TensorBoard: tracing ClassificationModule failed "
                     "(RuntimeError: cannot trace this)"], notes
    assert not events_of(tmp_path).Tags()["graph"]


def test_callbacks_none_keeps_the_checkpoints_and_drops_the_pictures(tmp_path):
    cfg = compose_run(["experiment=xor", "trainer.max_epochs=2", "callbacks=none"], tmp_path)
    assert list(cfg.callbacks) == ["model_checkpoint"]
    metrics = fit_and_test(cfg)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == [Path(metrics["best_model_path"]).name, "last.ckpt"], names
    assert Path(metrics["best_model_path"]).name in ("epoch_000.ckpt", "epoch_001.ckpt")
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "pictures").exists() and not events_of(tmp_path).Tags()["images"]


def test_picture_budget_draws_the_last_validation_and_skips_what_does_not_fit(tmp_path):
    # A share so small that no picture fits between two validations: only the last epoch's.
    fit_and_test(compose_run(["experiment=xor", "trainer.max_epochs=4", "data.train_size=256",
                       "callbacks.decision_boundary.max_share=1e-9", "callbacks.confusion_matrix.max_share=null"],
                      tmp_path))
    events = events_of(tmp_path)
    assert [image.step for image in events.Images("val/decision_boundary")] == [8]  # epoch 3 of 0-3
    assert [image.step for image in events.Images("val/confusion_matrix")] == [2, 4, 6, 8]  # null: every one
    assert len(events.Images("test/decision_boundary")) == 1


def test_predictions_come_from_the_step_outputs_or_the_model():
    model = ClassificationModule(MLP(input_shape=[2], hidden=[4], num_classes=3), torch.optim.SGD, num_classes=3)
    x = torch.randn(5, 2)
    given = torch.tensor([2, 2, 0, 1, 0])
    assert torch.equal(stage_picture.predictions(model, {"loss": 0, "preds": given}, x, classes=True), given)
    assert torch.equal(stage_picture.predictions(model, None, x, classes=True), model(x).argmax(-1))
    binary = ClassificationModule(MLP(input_shape=[2], hidden=[4], num_classes=1), torch.optim.SGD, num_classes=2)
    assert torch.equal(stage_picture.predictions(binary, None, x, classes=True), (binary(x)[:, 0] > 0).long())


def test_benchmark_writes_a_new_record_and_publishes_only_when_asked(tmp_path, monkeypatch):
    import json

    from benchmarks import pictures as picture_bench
    from benchmarks import run as bench

    row = {"case": "xor", "overrides": "experiment=xor", "epochs": 30, "repeats": 1, "fit_s": 10.0, "epoch_s": 0.3,
           "drawings": 4, "pictures_s": 0.2, "share": 0.02, "per_drawing_s": 0.05, "graph_once_s": 0.03}
    monkeypatch.setattr(picture_bench, "run", lambda *args, **kwargs: [row])
    monkeypatch.setattr(bench, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench, "MARKDOWN", tmp_path / "RESULTS.md")
    monkeypatch.setattr(bench, "RECORD", tmp_path / "RESULTS.json")
    sweeps = [{"launcher": "parallel", "jobs": 6, "wall_s": 30.0, "first_job_s": 15.0, "job_wall_s": 3.0,
               "ratio_to_joblib": 0.5, "repeats": 4}]
    published = {"date": "2026-01-01T00:00:00", "machine": {}, "overhead": [], "startup": [
        {"command": "python experiments/run.py --help", "wall_s": 3.0, "repeats": 3}], "sweeps": sweeps,
        "carried": {"sweeps": "2025-12-31T00:00:00"}}
    (tmp_path / "RESULTS.json").write_text(json.dumps(published))

    assert bench.main(["--only", "pictures", "--quick"]) == 0
    own = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(own) == 2 and own[0].endswith(".json") and own[1].endswith(".md"), own
    assert "| xor | experiment=xor | 30 |" in (tmp_path / "results" / own[1]).read_text()
    assert not (tmp_path / "RESULTS.md").exists()  # the published record is untouched
    assert json.loads((tmp_path / "RESULTS.json").read_text()) == published

    assert bench.main(["--only", "pictures", "--publish"]) == 0
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "| xor | experiment=xor | 30 |" in markdown and "2.00%" in markdown
    assert "Start-up: wall time of the command, median (from the run of 2026-01-01T00:00:00)" in markdown
    assert "Sweep launchers: 6 short XOR jobs, 2 at a time, the whole command, median (from the run of " \
           "2025-12-31T00:00:00)" in markdown, "a section carried twice keeps the date it was measured"
    assert bench.NOTES["sweeps"] in markdown.split("## Sweep launchers")[1], "its note under its table"
    record = json.loads((tmp_path / "RESULTS.json").read_text())
    assert record["pictures"] == [row] and record["startup"] == published["startup"] and record["sweeps"] == sweeps
    assert len(list((tmp_path / "results").glob("*.md"))) == 2  # the second run's own record too


@pytest.mark.parametrize("classes", [2, 10, 40])
def test_confusion_matrix_cells_take_their_colour_from_the_count(classes):
    """A perfect classifier: every diagonal cell the top colour of viridis, every other cell the
    bottom one, at a readable size (the counts, in the cells up to 20 classes, cover a little)."""
    confmat = torch.diag(torch.full((classes,), 50))
    image = confusion_matrix.confusion_matrix_image(confmat, [f"class {i}" for i in range(classes)], "val: accuracy")
    assert image.dtype == torch.uint8 and image.shape[0] == 3
    assert 300 <= image.shape[1] <= 1400 and 300 <= image.shape[2] <= 1400, image.shape
    cell = max(12, min(110, 520 // classes))
    pixels = image.permute(1, 2, 0).reshape(-1, 3)
    top, bottom = torch.tensor(drawing.viridis()[255]), torch.tensor(drawing.viridis()[0])
    assert (pixels == top).all(1).sum() >= 0.7 * classes * cell**2
    assert (pixels == bottom).all(1).sum() >= 0.7 * classes * (classes - 1) * cell**2
