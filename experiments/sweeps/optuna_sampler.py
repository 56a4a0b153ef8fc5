"""The sampler of conf/hparams_search: Optuna's TPE, re-seeded for a continued study."""

from __future__ import annotations

import logging
from typing import Any

# Alembic (Optuna's SQLite storage) logs "setup plugin ..." seven times at INFO on every sweep.
logging.getLogger("alembic").setLevel(logging.WARNING)


def continuing_tpe_sampler(seed: int | None = None, **kwargs: Any):
    """TPE whose seed is offset by the trials already in the study.

    Hydra builds a fresh sampler on every invocation, so a continued study with a
    fixed seed would repeat the first invocation's random start-up draws. Offsetting the seed
    by the number of the first trial it samples keeps a new study exactly as seeded and a
    continued one deterministic, without repeats."""
    import optuna

    from experiments.sweeps.optuna_internals import reseed_tpe

    class ContinuingTPESampler(optuna.samplers.TPESampler):
        offset: int | None = None

        def infer_relative_search_space(self, study, trial):  # the first call for each new trial
            if self.offset is None:
                self.offset = trial.number
                if seed is not None and self.offset:
                    reseed_tpe(self, seed + self.offset)
            return super().infer_relative_search_space(study, trial)

    return ContinuingTPESampler(seed=seed, **kwargs)
