"""Test a checkpoint: python experiments/evaluate.py ckpt_path=PATH [data=OPTION] [...]

The model config comes from the checkpoint itself (saved there by every run), so the
architecture needs no repeating on the command line. Bad input (no ckpt_path, a wrong value):
one paragraph, exit code 1, no folder left behind.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, os.environ["PROJECT_ROOT"])  # `python experiments/evaluate.py` from any folder

from experiments.command_line import check_command_line, one_paragraph_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    with one_paragraph_errors(discard=Path(cfg.paths.output_dir)):
        from experiments.pipeline import evaluate

        return evaluate(cfg)


if __name__ == "__main__":
    sys.argv[1:] = check_command_line("evaluate", sys.argv[1:])
    main()
