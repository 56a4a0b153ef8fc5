"""Task-level LightningModules (loss, metrics, optimizers) wrapping the plain nets in ``nets/``.

The classes load on first use (``lightning_modules.ClassificationModule``, as the configs name
them), so that reading ``lightning_modules.task_table`` imports no torch."""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {"ClassificationModule": "classification", "ManualBackpropRegression": "manual_backprop",
              "RegressionModule": "regression", "TaskModule": "task"}
__all__ = list(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"lightning_modules.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'lightning_modules' has no attribute {name!r}")
