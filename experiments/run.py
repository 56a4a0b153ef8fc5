"""Train and test a model: python experiments/run.py [GROUP=OPTION ...] [key=value ...]

Continue a run in its own folder: python experiments/run.py resume=latest [trainer.max_epochs=N]
See `python experiments/run.py --help` for the config groups and examples, and
docs/architecture.md for what happens from here to the test metrics.

Exit codes: 0 finished; 1 bad input or failed (in a multirun: any job failed); 2 a resume that
cannot go ahead; 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1), with a
checkpoint of that step and the command to resume printed.
"""

import sys

import hydra
from omegaconf import DictConfig

from experiments.config.errors import one_paragraph_errors
from experiments.runs.start import before_hydra


@hydra.main(version_base="1.3", config_path="../conf", config_name="run")
def main(cfg: DictConfig) -> float | None:
    with one_paragraph_errors():  # a failed run: one paragraph (or its traceback, for a bug)
        from experiments.pipeline import run_in_folder  # imported here so that --help and bad input exit fast

        return run_in_folder(cfg)


if __name__ == "__main__":
    sys.argv = before_hydra("run", sys.argv)  # resume=, bad input, the output folder: before anything is written
    main()  # a signal ends it with SystemExit(128 + N) (lightning_modules/run_guard.py)
