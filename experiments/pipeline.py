"""The recipe, read top to bottom: build -> trainer -> fit -> test -> metrics (``fit_and_test``).
``run_in_folder`` is experiments/run.py's body (the recipe in a run folder that RunFolder owns);
``evaluate`` and ``predict`` reuse its steps on a checkpoint's model."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from datamodules.contract import declared, split_loader
from experiments.config.checks import validate_config
from experiments.config.hardware import skip_gpu_probe_without_gpu
from experiments.config.hydra_runtime import hydra_choices
from experiments.config.pairing import check_built_pairing, check_declared_pairing
from experiments.runs import checkpoints, console, hparams
from experiments.runs.predictions import write_predictions

if TYPE_CHECKING:
    from experiments.runs.folder import RunFolder

log = logging.getLogger(__name__)


def run_in_folder(cfg: DictConfig) -> float | None:
    """The body of experiments/run.py: the recipe in the folder that RunFolder owns (its record,
    resume, signals); returns what a sweeper optimises."""
    from experiments.runs.folder import RunFolder
    from experiments.sweeps.summary import write_summary
    from experiments.sweeps.threads import set_torch_threads
    from lightning_modules.run_guard import RunInterrupted

    console.quiet()
    set_torch_threads()
    if rank_zero_only.rank != 0:  # every SLURM task runs this; only rank 0 writes the run's log
        console.drop_file_logging()
    folder = RunFolder(cfg)
    try:
        with folder:
            validate_config(cfg)  # a sweep's job checks its own values (the pairing too) before the tree is printed
            if rank_zero_only.rank == 0:  # under SLURM DDP every task runs this function
                console.print_config_tree(cfg, save_to=folder.dir / "config_tree.log")
            metrics = fit_and_test(cfg, folder)
            folder.finish(metrics, monitored_value(cfg, metrics))
            log.info("Metrics: %s", {k: float(f"{v:.6g}") for k, v in metrics.items() if "/" in k and isinstance(v, float)})
            if metrics.get("best_model_path"):
                log.info("Best checkpoint: %s", metrics["best_model_path"])
            log.info("Output: %s", folder.dir)
    except RunInterrupted:
        if folder.multirun and rank_zero_only.rank == 0:
            write_summary(folder.dir.parent)  # the sweep stops here; its summary says so
        raise
    return folder.objective


def fit_and_test(cfg: DictConfig, folder: RunFolder | None = None) -> dict[str, Any]:
    """The recipe: fit and/or test as the config says. Returns the final metrics (floats) and,
    under ``"best_model_path"``, the checkpoint that was tested. ``folder`` (the run folder's
    owner, experiments/runs/folder.py) adds resume, signals and the NaN guard."""
    validate_config(cfg)
    skip_gpu_probe_without_gpu()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    model, datamodule = build(cfg)
    trainer = make_trainer(cfg, folder)

    started = time.perf_counter()
    if cfg.get("train"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=folder.resume_from if folder else cfg.get("ckpt_path"),
                    weights_only=True)
        if folder:
            folder.raise_if_signalled(trainer.global_step)
    fit_metrics = {k: to_float(v) for k, v in trainer.callback_metrics.items()}

    best_path = None
    if cfg.get("test") and not (folder and folder.pruned):  # a pruned trial is left as its pruner stopped it
        if cfg.get("train"):
            best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if not best_path:
                log.warning("No best checkpoint: testing the weights at the end of training")
        else:
            best_path = cfg.get("ckpt_path")
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
        if folder:
            folder.raise_if_signalled(trainer.global_step)
    metrics = {**fit_metrics, **{k: to_float(v) for k, v in trainer.callback_metrics.items()}}
    metrics["time/total_s"] = time.perf_counter() - started

    best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    best_key = f"{cfg.monitor.metric}_best"
    if best_score is not None and best_key not in metrics:  # e.g. val/loss_best for regression
        metrics[best_key] = to_float(best_score)
        for logger in trainer.loggers:
            logger.log_metrics({best_key: metrics[best_key]}, step=trainer.global_step)
    if trainer.is_global_zero:  # other ranks have no writer (SLURM DDP runs this on every rank)
        trial = {"pruned": folder.pruned is not None} if folder and folder.trial else {}  # marked in TensorBoard
        hparams.log_hparams(trainer.loggers, {**hparams.run_hparams(cfg), **trial})
    metrics["best_model_path"] = best_path
    return metrics


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The data module and model of a config, checked against each other through the data
    contract (datamodules/contract.py): from what the data declares before anything is built,
    then on the built objects."""
    choices = hydra_choices()
    check_declared_pairing(cfg, choices)
    datamodule = instantiate(cfg.data, _convert_="object")
    model = instantiate(cfg.model, _convert_="object")
    check_built_pairing(model, datamodule, choices)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # saved in every checkpoint
    return model, datamodule


def make_trainer(cfg: DictConfig, folder: RunFolder | None = None) -> L.Trainer:
    """The configured trainer, callbacks and loggers, plus what the run folder adds."""
    callbacks = instantiate_all(cfg.get("callbacks"))
    # The trainer's switches win over configured callbacks of that kind (Lightning would refuse both).
    for switch, kind in (("enable_progress_bar", L.pytorch.callbacks.ProgressBar),
                         ("enable_model_summary", L.pytorch.callbacks.ModelSummary),
                         ("enable_checkpointing", L.pytorch.callbacks.ModelCheckpoint)):
        if cfg.trainer.get(switch) is False:  # None, like a missing key, is Lightning's default: on
            callbacks = [c for c in callbacks if not isinstance(c, kind)]
    purge_step = folder.resume_step() if folder else None
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if isinstance(node, DictConfig) and "_target_" in node:
            # A resumed run writes on into its own TensorBoard run and metrics.csv; what the
            # interrupted run logged after its checkpoint is dropped (purge_step), so each step is there once.
            resumable = node._target_.endswith(("TensorBoardLogger", "ResumableCSVLogger"))
            loggers.append(instantiate(node, **({"purge_step": purge_step} if resumable and purge_step is not None else {})))
    extra = {"plugins": folder.plugins()} if folder else {}
    return instantiate(cfg.trainer, callbacks=[*callbacks, *(folder.callbacks() if folder else [])],
                       logger=loggers or False, **extra)


def instantiate_all(node: DictConfig | None) -> list[Any]:
    """Every ``_target_`` entry of a dict-of-objects group (callbacks, logger)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, DictConfig) and "_target_" in v]


def monitored_value(cfg: DictConfig, metrics: dict[str, Any]) -> float | None:
    """What a sweeper optimises: the best value of ``monitor.metric`` seen during fit."""
    name = cfg.monitor.metric
    for key in (f"{name}_best", name):
        if key in metrics:
            return metrics[key]
    return None


def to_float(value: Any) -> float:
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------- a checkpoint's model

def config_from_checkpoint(cfg: DictConfig) -> DictConfig:
    """The run config saved inside ``cfg.ckpt_path``: data, never code (experiments/config/trusted.py)."""
    return checkpoints.run_config(checkpoints.read(cfg.ckpt_path), cfg.ckpt_path, list(cfg.get("trusted_packages") or []))


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` with the model it was trained with, on its data unless
    ``cfg.data`` names other data; trainer, logger and paths come from ``cfg``."""
    console.quiet()
    run_cfg = config_from_checkpoint(cfg)
    with open_dict(run_cfg):
        for key in ("trainer", "logger", "paths", "seed", "task_name", "tags", "ckpt_path"):
            run_cfg[key] = cfg.get(key)
        if cfg.get("data") is not None:
            run_cfg.data = cfg.data
        run_cfg.callbacks = None
        run_cfg.train, run_cfg.test = False, True
    console.print_config_tree(run_cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")
    metrics = fit_and_test(run_cfg)
    log.info("Metrics: %s", {k: float(f"{v:.6g}") for k, v in metrics.items() if k.startswith("test/")})
    return metrics


def predict(cfg: DictConfig) -> Path:
    """Write ``cfg.ckpt_path``'s predictions on ``cfg.split`` to ``<output_dir>/predictions.csv``."""
    console.quiet()
    run_cfg = config_from_checkpoint(cfg)
    if cfg.get("data") is not None:
        run_cfg.data = cfg.data
    model, datamodule = build(run_cfg)
    data = declared(datamodule)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    outputs = predict_split(trainer, model, datamodule, cfg.split, cfg.ckpt_path)
    predictions = torch.cat([o["preds"] for o in outputs]).float().cpu()
    targets = torch.cat([o["targets"] for o in outputs]).cpu() if all("targets" in o for o in outputs) else None
    path = write_predictions(Path(cfg.paths.output_dir) / "predictions.csv", predictions, targets,
                             classification=data.classification, class_names=data.class_names)
    log.info("Wrote %d predictions of the %s split to %s", len(predictions), cfg.split, path)
    return path


def predict_split(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, split: str,
                  ckpt_path: str | None) -> list[Any]:
    """The outputs of ``model.predict_step`` on each batch of ``split`` (train, val or test), in
    its stored order: Lightning's predict loop over the split's own loader (the data contract's
    ``split_loader``), with the data module's batch hooks, the checkpoint's weights and the data
    module's saved state (its split, its normalisation)."""
    stage = "test" if split == "test" else "fit"

    def loader():
        datamodule.setup(stage)  # the stage that serves this split (Lightning has set up "predict")
        return split_loader(datamodule, split)

    datamodule.predict_dataloader = loader  # Lightning asks the data module for its predict loader
    return trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
