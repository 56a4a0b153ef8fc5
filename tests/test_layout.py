"""The layout's rules, checked from the imports (tests/helpers/imports.py): no import cycles;
experiments/ in layers, each importing only the ones before it (config -> runs -> sweeps ->
pipeline -> the entry points); lightning_modules/ and datamodules/ never import experiments/;
nothing outside tests/ imports tests/; experiments/config/ imports nothing heavy when it loads."""

from pathlib import Path

from tests.conftest import ROOT
from tests.helpers.imports import broken_rules, read_graph


def test_the_project_keeps_the_layouts_rules():
    graph = read_graph(ROOT)
    assert len(graph.modules) > 60, "the whole project was read"
    assert broken_rules(graph) == []


def test_only_entry_points_and_the_recipe_sit_at_the_top_of_experiments():
    top = sorted(p.name for p in (ROOT / "experiments").glob("*.py"))
    assert top == ["__init__.py", "evaluate.py", "export.py", "pipeline.py", "predict.py", "run.py", "screenshots.py"]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_rules_catch_each_kind_of_break(tmp_path):
    root = write(tmp_path, {
        "experiments/__init__.py": "",
        "experiments/config/__init__.py": "",
        "experiments/config/a.py": "import torch\nfrom experiments.runs import b\n",  # heavy, and upwards
        "experiments/runs/__init__.py": "",
        "experiments/runs/b.py": "def f():\n    from experiments.config import a\n",  # a cycle, inside a function
        "lightning_modules/__init__.py": "from experiments.config import a\n",
        "datamodules/__init__.py": "from tests import helper\n",
        "tests/__init__.py": "",
        "tests/helper.py": "",
    })
    problems = broken_rules(read_graph(root))
    assert any(p.startswith("import cycle: experiments.config.a <-> experiments.runs.b") for p in problems), problems
    assert "experiments.config.a imports experiments.runs.b: experiments.config comes before experiments.runs" in problems
    assert "experiments.config.a imports torch when it loads: experiments/config/ stays light" in problems
    assert any(p.startswith("lightning_modules imports experiments.config") for p in problems)
    assert any(p.startswith("datamodules imports tests") for p in problems)
