"""compose -> instantiate -> fit -> test, shared by run.py, evaluate.py and the tests."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments import utils
from experiments.checks import check_pairing, validate_config

log = logging.getLogger(__name__)


def hydra_choices() -> dict[str, str]:
    """The option picked in each config group (model=cnn ...), when run under Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}
    except ValueError:
        return {}


def instantiate_all(node: DictConfig | None) -> list[Any]:
    """Every ``_target_`` entry of a dict-of-objects group (callbacks, logger)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, DictConfig) and "_target_" in v]


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The data module and model of a config, checked against each other."""
    datamodule = instantiate(cfg.data, _convert_="object")
    model = instantiate(cfg.model, _convert_="object")
    choices = hydra_choices()
    check_pairing(model, datamodule, choices.get("model", type(model.net).__name__),
                  choices.get("data", type(datamodule).__name__))
    with open_dict(cfg):
        cfg.monitor.metric = cfg.monitor.metric or model.default_monitor[0]
        cfg.monitor.mode = cfg.monitor.mode or model.default_monitor[1]
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    return model, datamodule


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and/or test as the config says; returns the final metrics (floats) and, under
    ``"best_model_path"``, the checkpoint that was tested."""
    validate_config(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    model, datamodule = build(cfg)
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    started = time.perf_counter()
    if cfg.get("train"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_metrics = {k: utils.to_float(v) for k, v in trainer.callback_metrics.items()}

    best_path = None
    if cfg.get("test"):
        if cfg.get("train"):
            best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if not best_path:
                log.warning("No best checkpoint: testing the weights at the end of training")
        else:
            best_path = cfg.get("ckpt_path")
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
    metrics = {**fit_metrics, **{k: utils.to_float(v) for k, v in trainer.callback_metrics.items()}}
    metrics["time/total_s"] = time.perf_counter() - started

    best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    if best_score is not None:
        metrics[f"{cfg.monitor.metric}_best"] = utils.to_float(best_score)
    for logger in trainer.loggers:  # hparams view: the run's choices beside its final metrics
        logger.log_hyperparams(utils.hparams_of(model.run_config),
                               metrics={k: v for k, v in metrics.items() if math.isfinite(v)})
        logger.finalize("success")
    metrics["best_model_path"] = best_path
    return metrics


def monitored_value(cfg: DictConfig, metrics: dict[str, Any]) -> float | None:
    """What a sweeper optimises: the best value of ``monitor.metric`` seen during fit."""
    name = cfg.monitor.metric
    for key in (f"{name}_best", name):
        if key in metrics:
            return metrics[key]
    return None


def run(cfg: DictConfig) -> float | None:
    utils.quiet()
    output_dir = Path(cfg.paths.output_dir)
    utils.print_config_tree(cfg, save_to=output_dir / "config_tree.log")
    metrics = train(cfg)
    value = monitored_value(cfg, metrics)
    shown = {k: round(v, 4) for k, v in metrics.items() if "/" in k and isinstance(v, float)}
    log.info("Metrics: %s", shown)
    log.info("Output: %s", output_dir)
    return value
