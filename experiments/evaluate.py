"""Test a checkpoint: python experiments/evaluate.py ckpt_path=PATH [data=OPTION] [...]

The model config comes from the checkpoint itself (saved there by every run, and read as data:
experiments/config/trusted.py), so the architecture needs no repeating on the command line. Bad
input (no ckpt_path, a wrong value): one paragraph, exit code 1, nothing of it left behind.
"""

import sys

import hydra
from omegaconf import DictConfig

from experiments.config.errors import one_paragraph_errors
from experiments.runs.ownership import removed_on_error
from experiments.runs.start import before_hydra


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    with one_paragraph_errors(), removed_on_error(cfg.paths.output_dir):
        from experiments.pipeline import evaluate

        return evaluate(cfg)


if __name__ == "__main__":
    sys.argv = before_hydra("evaluate", sys.argv)
    main()
