"""Train and test a model: python experiments/run.py [GROUP=OPTION ...] [key=value ...]

Continue a run in its own folder: python experiments/run.py resume=latest [trainer.max_epochs=N]
See `python experiments/run.py --help` for the config groups and examples.

Exit codes: 0 finished; 1 bad input or failed (in a multirun: any job failed); 2 a resume that cannot go
ahead; 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1), with a checkpoint
of that step and the command to resume printed.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, os.environ["PROJECT_ROOT"])  # `python experiments/run.py` from any folder

from experiments import run_folder  # noqa: E402  (also registers the configs' resolvers)
from experiments.command_line import check_command_line, one_paragraph_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="run")
def main(cfg: DictConfig) -> float | None:
    with one_paragraph_errors():  # bad input found once objects are built (a model that cannot take the data)
        from experiments.pipeline import run  # imported here so that --help and bad input exit fast

        return run(cfg)  # the folder, its record, resume and signals: experiments/run_folder.py


if __name__ == "__main__":
    try:
        sys.argv = run_folder.resume_argv(sys.argv)  # resume=...: the run's own overrides, its folder
    except run_folder.ResumeError as refused:
        print(refused.message, file=sys.stderr)
        sys.exit(refused.code)
    sys.argv[1:] = check_command_line("run", sys.argv[1:])  # bad input: one paragraph, exit 1, no run folder
    main()  # a signal ends it with SystemExit(128 + N) (lightning_modules/guards.py)
