"""Many runs: the sweep's summary and report, the launchers (parallel, local, SLURM), the Optuna
study, and the threads each job gets."""
