"""The one private attribute of Optuna this project reads (tests/test_sweeps.py fails when Optuna
changes it): a trial's id in its storage, which the storage's public ``record_heartbeat`` takes
(Optuna records heartbeats itself only inside ``study.optimize``, which a Hydra sweep cannot use)."""

from __future__ import annotations

from typing import Any


def trial_id(trial: Any) -> int:
    return trial._trial_id
