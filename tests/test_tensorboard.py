"""The dashboard as a researcher opens it (issue 9): a real ``tensorboard`` server on an XOR
run, a linear-regression run, a Fashion run and a small sweep, checked through its HTTP API,
and its pages shot with headless chromium."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

from experiments.dashboard.tensorboard import TensorBoard, chromium, screenshot
from tests.conftest import ROOT

ENV = {**os.environ, "PROJECT_ROOT": str(ROOT)}
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "trainer.log_every_n_steps=1"]
SWEEP = {"model.optimizer.lr": ("0.1", "0.5"), "seed": ("1", "2")}
SMALL_XOR = ["data.train_size=256", "data.val_size=128", "data.test_size=128"]

# Decision D3: the scalar tags, exactly (no Lightning `epoch`, no `_epoch` twins).
CLASSIFICATION_SCALARS = {"train/loss", "train/loss_step", "train/acc", "train/lr", "val/loss", "val/acc",
                          "val/acc_best", "test/loss", "test/acc"}
# model=linear trains with L1 loss, so `mae` would repeat `loss`.
L1_REGRESSION_SCALARS = {"train/loss", "train/loss_step", "train/mse", "train/lr", "val/loss", "val/mse",
                         "val/loss_best", "test/loss", "test/mse"}
# Decision D4: the pictures.
PICTURES = {
    "xor": {"val/decision_boundary", "val/confusion_matrix", "test/confusion_matrix"},
    "linear": {"val/fit"},
    "fashion": {"val/predictions", "val/confusion_matrix", "test/confusion_matrix"},
}


def _train(logs: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "experiments/run.py", *args, *QUIET, f"paths.log_dir={logs}"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def logs(tmp_path_factory, fake_fashion_dir) -> Path:
    """One logs folder with the four kinds of run, trained at once in real subprocesses."""
    logs = tmp_path_factory.mktemp("dashboard") / "logs"
    fashion = [f"data.debian_dir={fake_fashion_dir}", f"data.data_dir={logs.parent / 'data'}",
               "data.val_size=100", "data.download=false"]
    procs = {
        "xor": _train(logs, ["model=xor", "data=xor", *SMALL_XOR, "trainer.max_epochs=2"]),
        "linear": _train(logs, ["model=linear", "data=regression", "trainer.max_epochs=2"]),
        "fashion": _train(logs, ["model=mlp", "data=fashion", "trainer.max_epochs=1", *fashion]),
        "sweep": _train(logs, ["-m", "model=xor", "data=xor", *SMALL_XOR, "trainer.max_epochs=1",
                               *(f"{key}={','.join(values)}" for key, values in SWEEP.items())]),
    }
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name} run failed:\n{out[-4000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return logs


@pytest.fixture(scope="module")
def jobs(logs) -> dict[str, list[tuple[Path, dict]]]:
    """Each kind of run -> [(its folder, its job.json)], found by the records, not by folder names."""
    found: dict[str, list[tuple[Path, dict]]] = {"xor": [], "linear": [], "fashion": [], "sweep": []}
    for path in sorted(logs.rglob("job.json")):
        record = json.loads(path.read_text())
        overrides = record["overrides"]
        kind = ("sweep" if record.get("job") is not None else "xor" if "model=xor" in overrides
                else "linear" if "model=linear" in overrides else "fashion")
        found[kind].append((path.parent, record))
    assert {k: len(v) for k, v in found.items()} == {"xor": 1, "linear": 1, "fashion": 1, "sweep": 4}, found
    return found


@pytest.fixture(scope="module")
def tensorboard(logs, jobs):
    with TensorBoard(logs) as tb:
        expected = {_run_name(logs, folder) for runs in jobs.values() for folder, _ in runs}
        runs = tb.wait_for_runs(expected)
        assert expected <= set(runs), f"TensorBoard lists {runs}, not every run of {sorted(expected)}"
        yield tb


def _run_name(logdir: Path, folder: Path) -> str:
    return folder.relative_to(logdir).as_posix()


def _tags_of(by_run: dict[str, set[str]], logdir: Path, folder: Path) -> set[str]:
    """A run folder's tags: of its TensorBoard run and of any run under it."""
    name = _run_name(logdir, folder)
    return set().union(*(tags for run, tags in by_run.items() if run == name or run.startswith(name + "/")))


def _decode_png(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _not_blank(image: Image.Image) -> tuple[int, float]:
    """(distinct colours, share of the most common colour) of an image."""
    rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    return len(colours), max(count for count, _ in colours) / (rgb.width * rgb.height)


# ---------------------------------------------------------------- the HTTP API

def test_every_run_has_its_pictures_in_tensorboard_and_in_its_folder(logs, jobs, tensorboard):
    by_run = tensorboard.image_tags()
    for kind in ("xor", "linear", "fashion", "sweep"):
        for folder, _ in jobs[kind]:
            wanted = PICTURES["xor" if kind == "sweep" else kind]
            tags = _tags_of(by_run, logs, folder)
            assert wanted <= tags, f"{kind} run {folder.name}: image tags {sorted(tags)}, missing {sorted(wanted - tags)}"
            if kind == "linear":
                assert not {t for t in tags if "confusion_matrix" in t}, f"a regression run has {sorted(tags)}"
            pngs = [p.name for p in folder.rglob("*.png")]
            for tag in wanted:
                assert any(tag.split("/")[-1] in name for name in pngs), f"{kind}: no PNG of {tag} in {folder}: {pngs}"

    # The pictures TensorBoard serves are real, drawn images.
    for kind in ("xor", "linear", "fashion"):
        folder = jobs[kind][0][0]
        for tag in PICTURES[kind]:
            run = next(r for r in by_run if tag in by_run[r] and (r + "/").startswith(_run_name(logs, folder) + "/"))
            entries = tensorboard.get("/data/plugin/images/images?" + urllib.parse.urlencode({"run": run, "tag": tag}))
            assert entries, f"{kind}: no image under {tag}"
            png = tensorboard.get_bytes("/data/plugin/images/individualImage?" + entries[-1]["query"])
            image = _decode_png(png)
            colours, top = _not_blank(image)
            assert image.width >= 200 and image.height >= 150, (kind, tag, image.size)
            assert colours >= 8 and top < 0.95, f"{kind} {tag}: a blank picture ({colours} colours, {top:.0%} one colour)"


def test_scalar_tags_are_the_readmes(logs, jobs, tensorboard):
    by_run = tensorboard.scalar_tags()
    for kind, runs in jobs.items():
        wanted = L1_REGRESSION_SCALARS if kind == "linear" else CLASSIFICATION_SCALARS
        for folder, _ in runs:
            tags = _tags_of(by_run, logs, folder)
            assert tags == wanted, (f"{kind} run {folder.name}: missing {sorted(wanted - tags)}, "
                                    f"unexpected {sorted(tags - wanted)}")


def test_custom_scalars_put_train_and_val_on_one_chart_for_every_run(logs, jobs, tensorboard):
    layout = tensorboard.custom_scalars_layout()
    charts = [chart.get("multiline", {}).get("tag", []) for category in layout.get("category", [])
              for chart in category.get("chart", [])]
    assert charts, f"no custom scalars layout: {layout}"

    def chart_of(*tags: str) -> list[str]:
        """The tag regexes of the first chart that draws all of tags (the plugin uses re.match)."""
        for regexes in charts:
            if all(any(re.match(r, t) for r in regexes) for t in tags):
                return regexes
        raise AssertionError(f"no chart draws {tags} together; the charts' tags: {charts}")

    together = {("train/loss", "val/loss"): chart_of("train/loss", "val/loss"),
                ("train/acc", "val/acc"): chart_of("train/acc", "val/acc")}
    runs = list(tensorboard.scalar_tags())
    for kind, folders in jobs.items():
        for folder, _ in folders:
            name = _run_name(logs, folder)
            for wanted, regexes in together.items():
                if kind == "linear" and "train/acc" in wanted:
                    continue  # regression has no accuracy
                drawn = set()  # what the chart's query for this run returns, as the page asks it
                for run in [r for r in runs if r == name or r.startswith(name + "/")]:
                    for regex in regexes:
                        answer = tensorboard.get("/data/plugin/custom_scalars/scalars?"
                                                 + urllib.parse.urlencode({"run": run, "tag": regex}))
                        drawn |= {t for t, events in answer["tag_to_events"].items() if events}
                assert set(wanted) <= drawn, f"{kind} run {folder.name}: the chart {regexes} draws only {sorted(drawn)}"


def _sessions(tb: TensorBoard, experiment: dict) -> dict[str, dict]:
    """{session name (its run): {"hparams": ..., "metrics": {tag: value}}} of every session."""
    out = {}
    for group in tb.hparams_session_groups(experiment):
        for session in group.get("sessions", []):
            out[session["name"]] = {
                "hparams": group.get("hparams", {}),
                "metrics": {m["name"]["tag"]: m.get("value") for m in session.get("metricValues", [])},
            }
    return out


def _session_of(sessions: dict[str, dict], logdir: Path, folder: Path) -> dict:
    name = _run_name(logdir, folder)
    found = [s for run, s in sessions.items() if run == name or run.startswith(name + "/")]
    assert len(found) == 1, f"{len(found)} hparams sessions for {name}; sessions: {sorted(sessions)}"
    return found[0]


def _assert_metrics_match(kind: str, session: dict, record: dict, names: set[str]) -> None:
    for name in names:
        shown, recorded = session["metrics"].get(name), record["metrics"].get(name)
        assert isinstance(shown, (int, float)) and math.isfinite(shown), f"{kind}: hparams view shows {name}={shown}"
        assert shown == pytest.approx(recorded, rel=1e-5), f"{kind}: {name} shown {shown}, job.json {recorded}"


def test_hparams_show_the_choices_and_real_metrics_over_a_mixed_logs_folder(logs, jobs, tensorboard):
    experiment = tensorboard.hparams_experiment()
    names = [h["name"] for h in experiment.get("hparamInfos", [])]
    assert set(SWEEP) <= set(names), f"the swept keys are not hparams columns: {names}"
    assert not [n for n in names if "_target_" in n], f"class paths among the hparams: {names}"
    metrics = {m["name"]["tag"] for m in experiment.get("metricInfos", [])}
    assert {"val/acc", "test/acc", "val/loss", "val/mse"} <= metrics, f"hparams metrics: {sorted(metrics)}"

    sessions = _sessions(tensorboard, experiment)
    for folder, record in jobs["sweep"]:
        session = _session_of(sessions, logs, folder)
        for key, value in (o.split("=", 1) for o in record["overrides"] if o.split("=", 1)[0] in SWEEP):
            assert session["hparams"].get(key) == pytest.approx(float(value)), (folder.name, key, session["hparams"])
        _assert_metrics_match("sweep job", session, record, {"val/acc", "test/acc", "val/loss"})
        assert "null" not in session["hparams"].values(), f"'null' strings among the hparams: {session['hparams']}"
    _assert_metrics_match("linear", _session_of(sessions, logs, jobs["linear"][0][0]), jobs["linear"][0][1],
                          {"val/loss", "val/mse", "test/mse"})
    _assert_metrics_match("fashion", _session_of(sessions, logs, jobs["fashion"][0][0]), jobs["fashion"][0][1],
                          {"val/acc", "test/acc"})


def test_tensorboard_on_a_sweep_shows_the_swept_keys_first(jobs):
    sweep_dir = _sweep_root(jobs)
    with TensorBoard(sweep_dir) as tb:
        tb.wait_for_runs({_run_name(sweep_dir, folder) for folder, _ in jobs["sweep"]})
        experiment = tb.hparams_experiment()
        names = [h["name"] for h in experiment.get("hparamInfos", [])]
        assert set(names[: len(SWEEP)]) == set(SWEEP), f"the first hparams columns are {names[:6]}"
        sessions = _sessions(tb, experiment)
        for folder, record in jobs["sweep"]:
            _assert_metrics_match("sweep job", _session_of(sessions, sweep_dir, folder), record, {"val/acc", "test/acc"})
    # The helper stops the server it started (and its data server), port and all.
    assert tb.proc.returncode is not None
    with pytest.raises(OSError):
        tb.get("/data/environment", timeout=5)


def _sweep_root(jobs) -> Path:
    folders = [folder for folder, _ in jobs["sweep"]]
    root = Path(os.path.commonpath(folders))
    assert (root / "summary.csv").is_file(), f"no sweep summary in {root}"
    return root


# ---------------------------------------------------------------- a real browser

PAGES = {"scalars": "/?forceSVG=true#scalars", "images": "/?forceSVG=true#images", "hparams": "/?forceSVG=true#hparams"}


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (make test installs it: apt-get install chromium)")
def test_scalars_images_and_hparams_pages_render_in_headless_chromium(tensorboard, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots in {shots}")
    pixels = {}
    for page, path in PAGES.items():
        png = screenshot(tensorboard.url + path, shots / f"{page}.png", width=1400, height=900)
        image = Image.open(png).convert("RGB")
        assert image.size == (1400, 900), (page, image.size)
        colours, top = _not_blank(image)
        assert colours >= 200 and top < 0.95, f"{page} page looks blank: {colours} colours, {top:.0%} one colour ({png})"
        pixels[page] = image.tobytes()
    assert len(set(pixels.values())) == len(PAGES), f"two pages rendered the same picture ({shots})"
