"""Entry points (run.py, evaluate.py, predict.py) and the small library they share."""
from experiments import resolvers  # noqa: F401  (the configs' ${unique_dir:} and ${task_monitor:})
