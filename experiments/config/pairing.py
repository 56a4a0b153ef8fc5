"""Can this model learn from this data? Checked on the built objects before training starts,
so that a mismatch is one paragraph naming both (the model's net, what the data gives)."""

from __future__ import annotations

import logging

from experiments.config.errors import ConfigError

log = logging.getLogger(__name__)


def check_pairing(model, datamodule, model_name: str, data_name: str) -> None:
    """Fail early, and say why, when the model cannot learn from this data."""
    import torch

    pair = f"model={model_name} cannot train on data={data_name}"
    kind = datamodule.target_kind
    if kind not in model.accepted_targets:
        raise ConfigError(
            f"{pair}: {type(model).__name__} learns {'/'.join(sorted(model.accepted_targets))} targets, "
            f"but {type(datamodule).__name__} gives {kind} targets"
        )
    data_in = tuple(datamodule.input_shape)
    expected_in = tuple(getattr(model.net, "input_shape", ()) or ())
    if not expected_in:
        log.info("%s declares no input_shape: checking it by a forward pass only", type(model.net).__name__)
    elif expected_in != data_in:
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
