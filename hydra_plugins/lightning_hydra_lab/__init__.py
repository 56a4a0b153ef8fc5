"""This project's Hydra plugins. Hydra instantiates launchers and sweepers only from the
``hydra_plugins`` namespace, so each of ours is declared here and its code lives in experiments/:
``slurm`` (experiments/slurm.py), ``parallel`` (experiments/parallel_launcher.py), ``local``
(experiments/local_launcher.py) and the Optuna sweeper (experiments/optuna_study.py)."""
