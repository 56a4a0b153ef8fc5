"""``hydra/sweeper=optuna_study`` (conf/hydra/sweeper/optuna_study.yaml): an Optuna search on the
ask-and-tell API, with pruning, slots refilled as each trial ends, and safe for several invocations
of one study at once; the code is experiments/sweeps/optuna_study.py, imported only when a search
runs (Hydra imports every plugin at start-up, and Optuna takes seconds). Its samplers are
conf/hydra/sweeper/sampler/*.yaml."""

from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaStudySweeper(Sweeper):
    def __init__(self, **params: Any) -> None:
        from experiments.sweeps.optuna_study import StudySweeper

        self.sweeper = StudySweeper(**params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
