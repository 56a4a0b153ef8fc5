"""Train and test a model: python experiments/run.py [GROUP=OPTION ...] [key=value ...]

See `python experiments/run.py --help` for the config groups and examples.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="run")
def main(cfg: DictConfig) -> float | None:
    from experiments.pipeline import run  # imported here so that --help starts fast
    from experiments.sweep import run_job

    return run_job(run, cfg)  # in a multirun, a failed job is recorded and the sweep goes on


if __name__ == "__main__":
    main()
