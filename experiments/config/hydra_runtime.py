"""What the running Hydra app says about this process: a single run or a sweep's job, and the
option chosen in each config group."""

from __future__ import annotations

from omegaconf import DictConfig


def is_multirun(hydra_cfg: DictConfig | None = None) -> bool:
    """Whether this is a multirun job: of ``hydra_cfg``, or else of the running Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if hydra_cfg is None and HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
    return hydra_cfg is not None and hydra_cfg.get("mode") == RunMode.MULTIRUN


def hydra_choices() -> dict[str, str]:
    """The option picked in each config group (model=cnn ...), when run under Hydra."""
    from hydra.core.hydra_config import HydraConfig

    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()} if HydraConfig.initialized() else {}
