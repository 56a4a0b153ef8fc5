"""Test a checkpoint: python experiments/evaluate.py ckpt_path=PATH [data=OPTION] [...]

The model config comes from the checkpoint itself (saved there by every run), so the
architecture needs no repeating on the command line.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    from experiments.pipeline import evaluate

    return evaluate(cfg)


if __name__ == "__main__":
    main()
