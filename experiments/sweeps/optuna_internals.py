"""The private parts of Optuna this project reads (tests/test_library_internals.py fails when
Optuna changes them):

- a trial's id in its storage, which the storage's public ``record_heartbeat`` takes (Optuna
  records heartbeats itself only inside ``study.optimize``, which a Hydra sweep cannot use);
- TPE's random generators, re-seeded for a continued study (experiments/sweeps/optuna_sampler.py).
"""

from __future__ import annotations

from typing import Any


def trial_id(trial: Any) -> int:
    return trial._trial_id


def reseed_tpe(sampler: Any, seed: int) -> None:
    """Re-seed a TPESampler's own draws and its random start-up sampler's (``reseed_rng`` draws a
    new seed at random)."""
    import optuna

    sampler._rng.rng.seed(seed)
    sampler._random_sampler = optuna.samplers.RandomSampler(seed=seed)
