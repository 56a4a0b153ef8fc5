"""``hydra/launcher=local`` (conf/hydra/launcher/local.yaml): Hydra's submitit local launcher, where
a job that returns no result is a row; the code is experiments/sweeps/local.py."""

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher as SubmititLocalLauncher

from experiments.sweeps.local import LocalBehaviour


class LocalLauncher(LocalBehaviour, SubmititLocalLauncher):
    pass
