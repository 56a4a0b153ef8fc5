"""Your own data, model and metrics (README: Your own data and model): a folder of PNGs, CSV tables
and a plain LightningDataModule of a user's own, each through run, resume, evaluate, predict and
export; the data contract and its paragraphs; the model taking what it needs from the data; a
seeded split that no setup, resume or evaluation changes."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import declarations
from datamodules.contract import ContractError, declared
from datamodules.splits import SPLIT_FILE, seeded_split
from experiments import pipeline
from experiments.config.errors import ConfigError
from experiments.config.pairing import check_declared_pairing, data_declaration
from experiments.export import export
from tests.conftest import QUIET, ROOT, compose_run

FAST = ["trainer.max_epochs=2", "trainer.deterministic=true", "trainer.log_every_n_steps=1"]
IMAGES = ["model=cnn", "data=image_folder", "data.image_size=28", "data.batch_size=32", *FAST]  # LeNet takes 28x28
F1 = "+model.metrics.f1={_target_: torchmetrics.F1Score, _partial_: true, average: macro}"


def checkpoint(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def rows_of(path) -> list[dict[str, str]]:
    return list(csv.DictReader(Path(path).open()))


def script(name: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    """experiments/<name> as a user runs it, with ``home`` as the project folder (its logs, its own packages)."""
    return subprocess.run([sys.executable, str(ROOT / "experiments" / name), *args, *QUIET], cwd=home,
                          env={**os.environ, "PROJECT_ROOT": str(home)}, capture_output=True, text=True, timeout=300)


def assert_one_paragraph(proc: subprocess.CompletedProcess, message: str, home: Path) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and message in proc.stderr, out[-3000:]
    assert "Traceback" not in out and "CONFIG" not in out, "no traceback, no config tree: nothing ran"
    assert not list(home.rglob(".hydra")), "no run folder"


# ---------------------------------------------------------------- a folder of PNGs


@pytest.fixture(scope="module")
def image_run(own_data, tmp_path_factory):
    """cnn trained 2 epochs on the 300 PNGs (seeded split, no val/ or test/ folder)."""
    folder = tmp_path_factory.mktemp("image_run")
    cfg = compose_run([*IMAGES, f"data.root={own_data.images}"], folder)
    return folder, cfg, pipeline.fit_and_test(cfg)


def test_image_folder_trains_with_classes_and_channels_from_the_data(image_run, own_data):
    folder, cfg, metrics = image_run
    assert cfg.model.num_classes == 3 and cfg.model.net.in_channels == 1 and cfg.model.net.num_classes == 3
    assert metrics["test/acc"] >= 0.9, metrics  # the class is a bright bar's row
    split = json.loads((folder / SPLIT_FILE).read_text())
    assert split["class_names"] == ["class_0", "class_1", "class_2"]
    parts = {part: set(names) for part, names in split["splits"].items()}
    assert [len(parts[p]) for p in ("train", "val", "test")] == [240, 30, 30]  # 10% of each class to val and test
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])
    assert parts["train"] | parts["val"] | parts["test"] == {str(p.relative_to(own_data.images))
                                                             for p in own_data.images.rglob("*.png")}
    saved = checkpoint(folder / "checkpoints" / "last.ckpt")["ImageFolderDataModule"]
    assert saved["split"] == split["splits"] and len(saved["normalization"]["mean"]) == 1
    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    assert {"val/predictions", "val/confusion_matrix", "test/predictions"} <= set(events.Tags()["images"])


def test_a_seeded_split_is_the_same_at_every_setup_and_in_every_instance(own_data):
    cfg = compose_run(["data=image_folder", f"data.root={own_data.images}"], Path("unused"))
    first, second = instantiate(cfg.data), instantiate(cfg.data)
    first.setup("fit")
    files = {p: list(f) for p, f in first.files.items()}
    first.setup("test")  # setup runs again (fit, then test): nothing moves
    second.setup("fit")
    assert first.files == files == second.files
    assert seeded_split(10, 0.2, 0.2, 7) == seeded_split(10, 0.2, 0.2, 7) != seeded_split(10, 0.2, 0.2, 8)


def test_image_run_evaluates_predicts_and_exports_on_its_own_split(image_run, tmp_path):
    folder, _, metrics = image_run
    best = metrics["best_model_path"]
    evaluated = pipeline.evaluate(compose_run([f"ckpt_path={best}"], tmp_path / "eval", config_name="evaluate"))
    assert evaluated["test/acc"] == metrics["test/acc"] and evaluated["test/loss"] == pytest.approx(metrics["test/loss"])

    out = pipeline.predict(compose_run([f"ckpt_path={best}", "split=val"], tmp_path / "predict", config_name="predict"))
    rows = rows_of(out)
    val = json.loads((folder / SPLIT_FILE).read_text())["splits"]["val"]
    assert len(rows) == len(val) == 30, "one row per image of the val split, and only those"
    assert [r["target"] for r in rows] == [Path(name).parent.name for name in val], "targets of the same batches"
    assert list(rows[0])[-3:] == ["p[class_0]", "p[class_1]", "p[class_2]"]

    export(best, tmp_path / "export")
    described = json.loads((tmp_path / "export" / "export.json").read_text())
    trained = checkpoint(best)["ImageFolderDataModule"]["normalization"]
    assert described["input"]["shape"] == ["batch", 1, 28, 28]
    assert described["input"]["normalization"] == trained and described["class_names"] == ["class_0", "class_1", "class_2"]
    assert described["checked"].startswith("bit-identical")


def test_resume_from_the_first_epoch_gives_the_uninterrupted_weights(image_run, own_data, tmp_path):
    folder, _, _ = image_run
    first = pipeline.fit_and_test(compose_run([*IMAGES, f"data.root={own_data.images}", "trainer.max_epochs=1",
                                               "test=false"], tmp_path / "first"))
    assert first["best_model_path"] is None
    resumed = tmp_path / "resumed"
    pipeline.fit_and_test(compose_run([*IMAGES, f"data.root={own_data.images}", "test=false",
                                       f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"], resumed))
    want, got = checkpoint(folder / "checkpoints" / "last.ckpt"), checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert want["state_dict"].keys() == got["state_dict"].keys()
    for key, value in want["state_dict"].items():
        assert torch.equal(value, got["state_dict"][key]), key
    assert want["ImageFolderDataModule"] == got["ImageFolderDataModule"]


def test_images_added_later_never_enter_the_trained_split(own_data, tmp_path):
    root = shutil.copytree(own_data.images, tmp_path / "images")
    cfg = compose_run([*IMAGES, f"data.root={root}", "trainer.max_epochs=1", "test=false"], tmp_path / "run")
    metrics = pipeline.fit_and_test(cfg)
    trained = json.loads((tmp_path / "run" / SPLIT_FILE).read_text())["splits"]
    for k in range(3):  # new images: a fresh split of the folder would move files between the parts
        for i in range(40):
            shutil.copy(root / f"class_{k}" / "0000.png", root / f"class_{k}" / f"new_{i:02d}.png")
    from datamodules import folder_layout

    fresh = folder_layout.split_files(folder_layout.scan(str(root)), 0.1, 0.1, 42)
    assert {p: [n for n, _ in f] for p, f in fresh.items()} != trained, "the folder's own split has moved"
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    out = pipeline.predict(compose_run([f"ckpt_path={ckpt}", "split=train"], tmp_path / "predict", config_name="predict"))
    assert len(rows_of(out)) == len(trained["train"]) == 240
    assert json.loads((tmp_path / "predict" / SPLIT_FILE).read_text())["splits"] == trained
    assert metrics["best_model_path"] is None


def test_beyond_the_memory_budget_a_dataloader_decodes_each_batch(own_data, tmp_path):
    cfg = compose_run([*IMAGES, f"data.root={own_data.images}", "data.memory_budget_mb=0", "data.num_workers=1",
                       "trainer.max_epochs=1", "logger=none", "callbacks=none"], tmp_path)
    assert not pipeline.build(cfg)[1].in_memory
    metrics = pipeline.fit_and_test(cfg)
    assert metrics["test/acc"] > 0.3


def test_images_of_different_sizes_are_one_paragraph(own_data, tmp_path):
    root = shutil.copytree(own_data.images, tmp_path / "images")
    from torchvision.io import encode_png

    (root / "class_1" / "big.png").write_bytes(encode_png(torch.zeros(1, 20, 24, dtype=torch.uint8)).numpy().tobytes())
    datamodule = instantiate(compose_run(["data=image_folder", f"data.root={root}"], tmp_path).data)
    with pytest.raises(Exception) as error:
        datamodule.setup("fit")
    assert type(error.value).__name__ == "DataError"
    assert "big.png is 24x20 pixels, the first image 16x16: the images differ in size" in str(error.value)
    assert "data.image_size=16" in str(error.value)


# ---------------------------------------------------------------- CSV tables


@pytest.fixture(scope="module")
def species_run(own_data, tmp_path_factory):
    """mlp on a CSV whose target is words, with an F1 metric from the config, monitored."""
    folder = tmp_path_factory.mktemp("species")
    cfg = compose_run(["model=mlp", "data=csv", f"data.path={own_data.species}", "data.target=species", F1,
                       "monitor.metric=val/f1", "monitor.mode=max", "data.batch_size=32", *FAST], folder)
    return folder, cfg, pipeline.fit_and_test(cfg)


def test_csv_classification_with_words_as_classes_and_a_monitored_f1(species_run, tmp_path):
    folder, cfg, metrics = species_run
    assert cfg.model.net.input_shape == [5] and cfg.model.num_classes == 3
    events = EventAccumulator(str(folder))
    events.Reload()
    assert {"train/f1", "val/f1", "test/f1"} <= set(events.Tags()["scalars"])
    best = checkpoint(metrics["best_model_path"])
    monitor = next(v for k, v in best["callbacks"].items() if "BestAndLastCheckpoint" in k)
    assert monitor["monitor"] == "val/f1" and float(monitor["best_model_score"]) == max(
        e.value for e in events.Scalars("val/f1"))
    assert metrics["val/f1_best"] == pytest.approx(float(monitor["best_model_score"]))
    out = pipeline.predict(compose_run([f"ckpt_path={metrics['best_model_path']}"], tmp_path, config_name="predict"))
    rows = rows_of(out)
    test_rows = checkpoint(metrics["best_model_path"])["CSVDataModule"]["split"]["test"]
    assert len(rows) == len(test_rows) > 20 and {r["target"] for r in rows} <= {"adelie", "chinstrap", "gentoo"}
    assert list(rows[0])[-3:] == ["p[adelie]", "p[chinstrap]", "p[gentoo]"]


def test_csv_regression_is_a_five_to_one_linear_model_standardised_as_trained(own_data, tmp_path):
    cfg = compose_run(["model=linear", "data=csv", f"data.path={own_data.prices}", "data.target=price", *FAST,
                       "trainer.max_epochs=20", "data.batch_size=16"], tmp_path / "run")
    assert (cfg.model.net.in_features, cfg.model.net.out_features) == (5, 1)
    metrics = pipeline.fit_and_test(cfg)
    assert metrics["test/loss"] < 0.5, metrics  # L1 of a target with std ~3.7: the standardised features learned
    best = metrics["best_model_path"]
    saved = checkpoint(best)["CSVDataModule"]
    trained = saved["normalization"]
    train_rows = [rows_of(own_data.prices)[i] for i in saved["split"]["train"]]
    x2 = torch.tensor([float(r["x2"]) for r in train_rows])
    assert trained["mean"][1] == pytest.approx(x2.mean().item(), rel=1e-4), "fitted on the training rows only"
    assert trained["std"][1] == pytest.approx(x2.std(correction=0).item(), rel=1e-4) and trained["std"][2] < 0.1

    # new rows, predicted with the training rows' standardisation (not the new file's own)
    table = rows_of(own_data.prices)[:20]
    new = tmp_path / "new.csv"
    with new.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    out = pipeline.predict(compose_run([f"ckpt_path={best}", "data=csv", f"data.path={new}", "data.target=price",
                                        "data.val_fraction=0", "data.test_fraction=0", "split=train"],
                                       tmp_path / "predict", config_name="predict"))
    weights = checkpoint(best)["state_dict"]
    x = torch.tensor([[float(r[f"x{i}"]) for i in range(1, 6)] for r in table])
    want = ((x - torch.tensor(trained["mean"])) / torch.tensor(trained["std"])) @ weights["net.linear.weight"].T \
        + weights["net.linear.bias"]
    got = torch.tensor([float(r["pred[0]"]) for r in rows_of(out)])
    assert torch.allclose(got, want.squeeze(1), rtol=1e-4, atol=1e-4)

    export(best, tmp_path / "export")
    described = json.loads((tmp_path / "export" / "export.json").read_text())
    assert described["input"]["normalization"] == trained and described["input"]["shape"] == ["batch", 5]
    assert described["output"] == "1 regression output per sample"


@pytest.mark.parametrize("overrides,message", [
    (["data.target=spieces"], "data.target=spieces: {path} has no column 'spieces'. Did you mean species? Its columns: "
                              "x1, x2, x3, x4, x5, species."),
    (["data.target=x1", "data.features=[x2,species]"], "the feature column species holds values that are not numbers "
                                                        "(e.g. '"),
    (["data.target=species", "data.task=regression"], "data.task=regression: the target column species holds values "
                                                      "that are not numbers"),
])
def test_bad_columns_are_one_paragraph_naming_the_columns(overrides, message, own_data, tmp_path):
    cfg = compose_run(["model=mlp", "data=csv", f"data.path={own_data.species}", *overrides], tmp_path)
    with pytest.raises(ConfigError) as error:
        data_declaration(cfg.data)
    assert message.format(path=own_data.species) in str(error.value) and "\n" not in str(error.value)


def test_a_bad_column_is_refused_before_anything_runs(own_data, tmp_path):
    proc = script("run.py", "model=linear", "data=csv", f"data.path={own_data.prices}", "data.target=prise",
                  home=tmp_path)
    assert_one_paragraph(proc, "has no column 'prise'. Did you mean price?", tmp_path)


def test_parquet_without_pyarrow_says_what_to_do(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyarrow is installed here: Parquet files are read")
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    cfg = compose_run(["model=mlp", "data=csv", f"data.path={tmp_path / 't.parquet'}", "data.target=y"], tmp_path)
    with pytest.raises(ConfigError, match="reading Parquet needs pyarrow, which is not installed here"):
        data_declaration(cfg.data)


# ---------------------------------------------------------------- the contract


def test_every_project_data_module_declares_what_its_config_says(own_data, fake_fashion, tmp_path):
    """The light declarations (read before torch loads) equal the built modules' own contract."""
    from torchvision.datasets import FashionMNIST

    assert declarations.FASHION.class_names == tuple(FashionMNIST.classes)
    cases = [["data=xor"], ["data=fashion", *fake_fashion], ["data=regression"],
             ["data=regression", "data.generator=random", "+data.generator_kwargs.in_features=7",
              "+data.generator_kwargs.out_features=3"],
             ["data=image_folder", *own_data.overrides("image_folder"), "data.channels=3", "data.image_size=[20,24]"],
             ["data=csv", f"data.path={own_data.prices}", "data.target=price"], ["data=csv", *own_data.overrides("csv")],
             ["data=csv", f"data.path={own_data.prices}", "data.target=[x5,price]"]]  # two regression targets
    for overrides in cases:
        cfg = compose_run(overrides, tmp_path)
        light, built = data_declaration(cfg.data), declared(instantiate(cfg.data))
        assert (light.input_shape, light.target_kind, light.num_classes, light.target_dim, light.class_names) == (
            built.input_shape, built.target_kind, built.num_classes, built.target_dim, built.class_names), overrides
    from datamodules.regression import GENERATORS

    for name, generate in GENERATORS.items():
        x, y = generate(torch.Generator().manual_seed(0))
        assert declarations.regression(name).input_shape == tuple(x.shape[1:]), name
        assert declarations.regression(name).target_dim == y.shape[1], name


class Partial:
    input_shape, target_kind = (4,), "multiclass"


@pytest.mark.parametrize("fields,message", [
    ({}, "Partial has multiclass targets but does not declare num_classes; the data contract asks every data module "
         "for num_classes: the number of classes (2 for binary targets). Declare it as a class attribute or in "
         "__init__, before any data loads (README: Your own data and model)."),
    ({"num_classes": 3, "input_shape": None}, "Partial does not declare input_shape; the data contract asks"),
    ({"num_classes": 3, "target_kind": "labels"}, "Partial declares target_kind='labels'; the data contract asks every "
                                                  "data module for target_kind: the kind of target: 'binary', "),
    ({"num_classes": 3, "class_names": ["a"]}, "Partial declares 1 class names for 3 classes;"),
])
def test_a_data_module_that_lacks_a_field_is_told_which(fields, message):
    module = Partial()
    for key, value in fields.items():
        setattr(module, key, value)
    with pytest.raises(ContractError) as error:
        declared(module)
    assert message in str(error.value)


MY_DATA = '''
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Points(L.LightningDataModule):
    input_shape = (2,)  # no target_kind: the contract is not kept

    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(64, 2), torch.randint(0, 2, (64,))), batch_size=self.batch_size)
'''

MY_NET = '''
import torch


class TinyNet(torch.nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 16):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(in_features, hidden), torch.nn.ReLU(),
                                          torch.nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)
'''


def test_a_users_data_module_that_lacks_a_field_is_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "mydata.py").write_text(MY_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_run(["model=mlp", "~data", "+data={_target_: mydata.Points}"], tmp_path)
    with pytest.raises(ConfigError) as error:
        pipeline.build(cfg)  # as validate_config does before Hydra starts, and before anything is built
    assert str(error.value).startswith("Points does not declare target_kind; the data contract asks every data "
                                       "module for target_kind")


def test_a_misspelt_argument_of_a_users_net_is_one_paragraph(tmp_path):
    (tmp_path / "mynets.py").write_text(MY_NET)
    net = "+model.net={_target_: mynets.TinyNet, in_features: '${from_data:in_features}', num_classes: 1, hiden: 8}"
    proc = script("run.py", "data=xor", "~model.net", net, home=tmp_path)
    assert_one_paragraph(proc, "model.net.hiden is not a setting (mynets.TinyNet has no argument 'hiden'). Did you mean "
                               "model.net.hidden?", tmp_path)


def test_a_torchvision_net_takes_the_classes_from_the_data_and_its_arguments_are_checked(own_data, tmp_path):
    from experiments.config.checks import validate_config

    net = ["data.channels=3", "model.net._target_=torchvision.models.resnet18", "~model.net.in_channels"]
    cfg = compose_run(["data=image_folder", *own_data.overrides("image_folder"), *net], tmp_path)
    validate_config(cfg)
    model, _ = pipeline.build(cfg)  # the built net runs on a batch of the declared shape
    assert type(model.net).__name__ == "ResNet" and model.net.fc.out_features == 3
    for bad, message in (("+model.net.zero_init_residual=maybe", "model.net.zero_init_residual='maybe' is not allowed: "
                                                                "model.net.zero_init_residual takes true or false"),
                         ("+model.net.num_clases=3", "Did you mean model.net.num_classes?")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate_config(compose_run(["data=image_folder", *own_data.overrides("image_folder"), *net, bad],
                                        tmp_path))


def test_a_bad_pairing_is_refused_before_torch_is_imported():
    code = ("import sys\nfrom experiments.config.command_line import check_command_line\n"
            "try:\n    check_command_line('run', ['model=cnn', 'data=xor'])\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROJECT_ROOT": str(ROOT)})
    assert proc.stdout.strip() == "exit 1 False", proc.stdout + proc.stderr
    assert ("model=cnn cannot train on data=xor: LeNet takes its in_channels from the data, the channels of image "
            "inputs [C, H, W], but XORDataModule gives inputs of shape [2]") in proc.stderr


def test_models_take_what_they_need_from_the_data(tmp_path):
    for overrides, net in ((["model=mlp", "data=xor"], {"input_shape": [2], "num_classes": 1}),
                           (["model=linear", "data=regression", "data.generator=random"],
                            {"in_features": 1000, "out_features": 10}),
                           (["model=resnet", "data=fashion"], {"in_channels": 1, "num_classes": 10}),
                           (["model=mlp_regression", "data=regression", "data.generator=random"],
                            {"input_shape": [1000], "num_classes": 10})):
        cfg = compose_run(overrides, tmp_path)
        assert {k: cfg.model.net[k] for k in net} == net, overrides
        check_declared_pairing(cfg, {})


# ---------------------------------------------------------------- a plain LightningDataModule of a user's own


def test_a_plain_datamodule_of_the_users_own_runs_evaluates_predicts_and_exports(tmp_path):
    """docs/examples/two_moons.py: DataLoaders over TensorDatasets, nothing of this project, the contract declared."""
    metrics = pipeline.fit_and_test(compose_run(["model=mlp", "data=two_moons", *FAST], tmp_path / "run"))
    assert metrics["test/acc"] > 0.8, metrics
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0})
    events.Reload()
    assert {"val/decision_boundary", "val/confusion_matrix", "test/decision_boundary"} <= set(events.Tags()["images"])
    best = metrics["best_model_path"]
    with pytest.raises(ConfigError, match=r"names data._target_=docs.examples.two_moons.TwoMoons, which this project does "
                                          r"not build from a file .* trusted_packages=\[docs\]"):
        pipeline.evaluate(compose_run([f"ckpt_path={best}"], tmp_path / "refused", config_name="evaluate"))
    trusted = "trusted_packages=[docs]"
    evaluated = pipeline.evaluate(compose_run([f"ckpt_path={best}", trusted], tmp_path / "eval", config_name="evaluate"))
    assert evaluated["test/acc"] == metrics["test/acc"]
    out = pipeline.predict(compose_run([f"ckpt_path={best}", trusted, "split=val"], tmp_path / "predict",
                                       config_name="predict"))
    rows = rows_of(out)
    assert len(rows) == 200 and {r["target"] for r in rows} == {"upper", "lower"}
    export(best, tmp_path / "export", ["docs"])
    assert json.loads((tmp_path / "export" / "export.json").read_text())["output"].startswith("one logit per sample")
