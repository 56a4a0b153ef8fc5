"""Predict with a checkpoint: python experiments/predict.py ckpt_path=PATH [split=test] [data=OPTION]

Writes predictions.csv (one row per sample: target, prediction, and the class
probabilities or regression outputs) into the run folder. Bad input (no ckpt_path, a split
other than train/val/test): one paragraph, exit code 1, no folder left behind.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, os.environ["PROJECT_ROOT"])  # `python experiments/predict.py` from any folder

from experiments.command_line import check_command_line, one_paragraph_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> str:
    with one_paragraph_errors(discard=Path(cfg.paths.output_dir)):
        from experiments.pipeline import predict

        return str(predict(cfg))


if __name__ == "__main__":
    sys.argv[1:] = check_command_line("predict", sys.argv[1:])
    main()
