"""Predict with a checkpoint: python experiments/predict.py ckpt_path=PATH [split=test] [data=OPTION]

Writes predictions.csv (one row per sample: target, prediction, and the class probabilities or
regression outputs) into the run folder. Bad input (no ckpt_path, a split other than
train/val/test): one paragraph, exit code 1, nothing of it left behind.
"""

import sys

import hydra
from omegaconf import DictConfig

from experiments.config.errors import one_paragraph_errors
from experiments.runs.ownership import removed_on_error
from experiments.runs.start import before_hydra


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> str:
    with one_paragraph_errors(), removed_on_error(cfg.paths.output_dir):
        from experiments.pipeline import predict

        return str(predict(cfg))


if __name__ == "__main__":
    sys.argv = before_hydra("predict", sys.argv)
    main()
