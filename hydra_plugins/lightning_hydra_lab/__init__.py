"""This project's Hydra plugins. Hydra instantiates launchers only from the ``hydra_plugins``
namespace, so the SLURM launcher of experiments/slurm.py is declared here."""
