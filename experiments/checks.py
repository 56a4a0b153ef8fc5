"""Checks that run before any training, so that a bad config fails in seconds with a
message naming the bad value and what is allowed."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig

log = logging.getLogger(__name__)

PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed", "64", "64-true", "bf16-true", "16-true")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


class ConfigError(ValueError):
    pass


def validate_config(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ConfigError(f"seed={seed!r} is not allowed: use an integer in [0, 2**32) or null for a random seed")
    trainer = cfg.get("trainer") or {}
    precision = str(trainer.get("precision", "32"))
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision} is not allowed; use one of {', '.join(PRECISIONS)}")
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator={accelerator} is not allowed; use one of {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; use trainer=cpu or trainer=auto")
    if precision == "16-mixed" and (accelerator == "cpu" or not torch.cuda.is_available()):
        log.warning("trainer.precision=16-mixed needs a GPU: on the CPU Lightning runs bf16-mixed instead")
    if not cfg.get("train") and not cfg.get("test"):
        raise ConfigError("train=false and test=false: nothing to do")
    if not cfg.get("train") and cfg.get("test") and not cfg.get("ckpt_path"):
        log.warning("train=false without ckpt_path: testing an untrained model")
    monitor = cfg.get("monitor") or {}
    if monitor.get("mode") not in (None, "min", "max"):
        raise ConfigError(f"monitor.mode={monitor.get('mode')} is not allowed; use min or max")


def check_pairing(model, datamodule, model_name: str, data_name: str) -> None:
    """Fail early, and say why, when the model cannot learn from this data."""
    pair = f"model={model_name} cannot train on data={data_name}"
    kind = datamodule.target_kind
    if kind not in model.accepted_targets:
        raise ConfigError(
            f"{pair}: {type(model).__name__} learns {'/'.join(sorted(model.accepted_targets))} targets, "
            f"but {type(datamodule).__name__} gives {kind} targets"
        )
    expected_in = tuple(getattr(model.net, "input_shape", ()) or ())
    data_in = tuple(datamodule.input_shape)
    if expected_in and expected_in != data_in:
        raise ConfigError(
            f"{pair}: {type(model.net).__name__} takes inputs of shape {list(expected_in)}, "
            f"but {type(datamodule).__name__} gives {list(data_in)}"
        )
    try:
        with torch.no_grad():
            out = model.net.eval()(datamodule.example_input())
        model.net.train()
    except Exception as exc:
        raise ConfigError(
            f"{pair}: {type(model.net).__name__} fails on a batch of shape {list(data_in)}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    width = out.shape[-1] if out.ndim > 1 else 1
    if kind == "regression":
        wanted, what = datamodule.target_dim, "target values"
    else:
        wanted, what = model.num_outputs, f"logits for {datamodule.num_classes} classes"
        if datamodule.num_classes != model.hparams.num_classes:
            raise ConfigError(
                f"{pair}: model.num_classes={model.hparams.num_classes} but the data has "
                f"{datamodule.num_classes} classes"
            )
    if width != wanted:
        raise ConfigError(f"{pair}: the net gives {width} outputs, the task needs {wanted} {what}")
