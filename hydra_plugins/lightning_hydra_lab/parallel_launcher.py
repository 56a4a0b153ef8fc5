"""``hydra/launcher=parallel`` (conf/hydra/launcher/parallel.yaml): joblib's launcher with each job
in a process of its own, so that a job that dies is a row; the code is experiments/sweeps/parallel.py."""

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from experiments.sweeps.parallel import ProcessPerJob


class ParallelLauncher(ProcessPerJob, JoblibLauncher):
    pass
