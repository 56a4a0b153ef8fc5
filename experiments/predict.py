"""Predict with a checkpoint: python experiments/predict.py ckpt_path=PATH [split=test] [data=OPTION]

Writes predictions.csv (one row per sample: target, prediction, and the class
probabilities or regression outputs) into the run folder.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> str:
    from experiments.pipeline import predict

    return str(predict(cfg))


if __name__ == "__main__":
    main()
