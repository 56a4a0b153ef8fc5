"""``hydra/sweeper=optuna_study`` (conf/hydra/sweeper/optuna_study.yaml): Hydra's Optuna sweeper,
safe for several invocations of one study at once; the code is experiments/optuna_study.py."""

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

from experiments.optuna_study import StudyBehaviour


class OptunaStudySweeper(StudyBehaviour, OptunaSweeperImpl):
    pass
