"""Entry points (run.py, evaluate.py, predict.py, export.py, screenshots.py), the recipe they share
(pipeline.py), and the library in config/, runs/, sweeps/ and dashboard/ (docs/architecture.md)."""

# The resolvers the configs use, registered by importing any module of this package.
from experiments.config import resolvers  # noqa: F401
from experiments.runs import naming  # noqa: F401
