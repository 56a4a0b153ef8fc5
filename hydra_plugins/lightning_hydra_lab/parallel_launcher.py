"""``hydra/launcher=parallel`` (conf/hydra/launcher/parallel.yaml): joblib's launcher with each job
in a process of its own, so that a job that dies is a row; the code is experiments/parallel_launcher.py."""

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from experiments.parallel_launcher import ProcessPerJob


class ParallelLauncher(ProcessPerJob, JoblibLauncher):
    pass
