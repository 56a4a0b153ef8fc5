"""``hydra/launcher=slurm`` (conf/hydra/launcher/slurm.yaml): Hydra's submitit SLURM launcher with
this project's behaviour on a real cluster, which lives in experiments/sweeps/slurm.py."""

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher

from experiments.sweeps.slurm import ClusterBehaviour


class SlurmLauncher(ClusterBehaviour, SubmititSlurmLauncher):
    pass
