"""This project's Hydra plugins. Hydra instantiates launchers and sweepers only from the
``hydra_plugins`` namespace, so each of ours is declared here and its code lives in experiments/:
``slurm`` (experiments/sweeps/slurm.py), ``parallel`` (experiments/sweeps/parallel.py), ``local``
(experiments/sweeps/local.py) and the Optuna sweeper (experiments/sweeps/optuna_study.py)."""
