"""Can this model learn from this data? The data's side is what its data module declares (the data
contract, datamodules/contract.py); the model's, the targets its task learns
(lightning_modules/task_table.py) and what its config takes from the data.

- ``data_declaration(cfg.data)``: what the data module declares, computed from its config for this
  project's data modules (datamodules/declarations.py: no torch), else read from the module itself
  (built from its config: it declares in ``__init__``, before any data loads).
- ``${from_data:FIELD}`` (experiments/config/resolvers.py, ``link``): a model config's value taken
  from the data (the number of classes, the input's channels or width ...), as LightningCLI
  links arguments: a data set with 7 classes just works, and nothing is typed twice.
- ``check_declared_pairing``: before anything is built (the command line's check, so before the
  config tree is printed): the task learns the data's kind of target, and every link of the
  model has a value for this data. A paragraph in a second.
- ``check_built_pairing``: once both are built: the net runs on a batch shaped as the data
  declares and gives as many outputs as the task needs.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from datamodules import declarations
from datamodules.contract import SECTION, ContractError, DataError, Declared, declared
from experiments.config.errors import ConfigError
from lightning_modules.task_table import task_of

log = logging.getLogger(__name__)


class DataLinkError(ValueError):
    """A ``${from_data:FIELD}`` that this data has no value for."""


# field -> (what it is, its value for a data set, None where the data has none)
LINKS: dict[str, tuple[str, Callable[[Declared], Any]]] = {
    "num_classes": ("the number of classes", lambda d: d.num_classes if d.classification else None),
    "num_outputs": ("the outputs per sample (a logit per class, one for binary targets, the target values)",
                    lambda d: d.num_outputs),
    "input_shape": ("the shape of one input", lambda d: list(d.input_shape)),
    "in_features": ("the width of flat inputs [F]", lambda d: d.input_shape[0] if len(d.input_shape) == 1 else None),
    "in_channels": ("the channels of image inputs [C, H, W]", lambda d: d.input_shape[0] if d.is_image else None),
    "image_size": ("the side of square image inputs [C, S, S]",
                   lambda d: d.input_shape[1] if d.is_image and d.input_shape[1] == d.input_shape[2] else None),
}
LINK = re.compile(r"^\$\{from_data:\s*(\w+)\s*\}$")


def in_words(d: Declared) -> str:
    return f"inputs of shape {list(d.input_shape)} and {d.targets_in_words()}"


def link(data: Declared, field: str) -> Any:
    """The value of ``${from_data:field}`` for ``data``; DataLinkError when it has none."""
    if field not in LINKS:
        raise DataLinkError(f"${{from_data:{field}}} is not a link to the data; the links are {', '.join(LINKS)}")
    what, value_of = LINKS[field]
    value = value_of(data)
    if value is None:
        raise DataLinkError(f"{what}")
    return value


def data_declaration(data: DictConfig | Mapping[str, Any]) -> Declared:
    """What the data module of ``data`` (a data config) declares; ConfigError when it cannot be
    told (a required value missing, a folder or column that is not there, a field not declared)."""
    if isinstance(data, DictConfig):
        missing = sorted(OmegaConf.missing_keys(data))
        if missing:
            raise ConfigError(f"data.{missing[0]} is required by {data.get('_target_')}: add data.{missing[0]}=VALUE "
                              f"to the command line ({SECTION}).")
        data = OmegaConf.to_container(data, resolve=True)
    return _declaration(json.dumps(data, sort_keys=True, default=str))


@functools.lru_cache(maxsize=16)
def _declaration(data_json: str) -> Declared:
    data = json.loads(data_json)
    try:
        found = declarations.of_config(data)
        if found is not None:
            return found
        from hydra.utils import instantiate  # another data module: built, to read what it declares

        return declared(instantiate(data, _convert_="object"))
    except (DataError, ContractError) as error:
        raise ConfigError(str(error)) from None


def model_links(model: DictConfig, path: str = "model") -> Iterator[tuple[str, str]]:
    """(key, field) of every ``${from_data:FIELD}`` in a model config."""
    for key, value in OmegaConf.to_container(model, resolve=False).items():
        full = f"{path}.{key}"
        if isinstance(value, str) and (match := LINK.match(value)):
            yield full, match.group(1)
        elif isinstance(value, dict):
            yield from model_links(model[key], full)


def _short(target: Any) -> str:
    return str(target).rpartition(".")[2]


def pair_words(cfg: DictConfig, choices: Mapping[str, str]) -> str:
    model = choices.get("model") or _short(cfg.model.get("net", {}).get("_target_") or cfg.model.get("_target_"))
    data = choices.get("data") or _short(cfg.data.get("_target_"))
    return f"model={model} cannot train on data={data}"


def check_declared_pairing(cfg: DictConfig, choices: Mapping[str, str]) -> None:
    """Before anything is built: one paragraph when the model cannot learn from the data."""
    if cfg.get("model") is None or cfg.get("data") is None:
        return
    data = data_declaration(cfg.data)
    pair, data_class = pair_words(cfg, choices), _short(cfg.data.get("_target_"))
    task = task_of(str(cfg.model.get("_target_")))
    if task is not None and data.target_kind not in task.targets:
        raise ConfigError(f"{pair}: {_short(cfg.model._target_)} learns {'/'.join(sorted(task.targets))} targets, but "
                          f"{data_class} gives {data.targets_in_words()}.")
    for key, field in model_links(cfg.model):
        try:
            link(data, field)
        except DataLinkError as error:
            owner = OmegaConf.select(cfg, key.rpartition(".")[0])
            name = _short(owner.get("_target_")) if isinstance(owner, DictConfig) and owner.get("_target_") else key
            raise ConfigError(f"{pair}: {name} takes its {key.rpartition('.')[2]} from the data, {error}, but "
                              f"{data_class} gives {in_words(data)} ({key}).") from None


def check_built_pairing(model: Any, datamodule: Any, choices: Mapping[str, str]) -> Declared:
    """Once built: the net takes a batch shaped as the data declares and gives the outputs the
    task needs. Returns what the data module declares."""
    import torch

    data = declared(datamodule)
    net = getattr(model, "net", model)
    pair = (f"model={choices.get('model') or type(net).__name__} cannot train on "
            f"data={choices.get('data') or type(datamodule).__name__}")
    accepted = getattr(model, "accepted_targets", None)
    if accepted is not None and data.target_kind not in accepted:
        raise ConfigError(f"{pair}: {type(model).__name__} learns {'/'.join(sorted(accepted))} targets, but "
                          f"{type(datamodule).__name__} gives {data.targets_in_words()}")
    expected_in = tuple(getattr(net, "input_shape", ()) or ())
    if not expected_in:
        log.info("%s declares no input_shape: checking it by a forward pass only", type(net).__name__)
    elif expected_in != data.input_shape:
        raise ConfigError(f"{pair}: {type(net).__name__} takes inputs of shape {list(expected_in)}, "
                          f"but {type(datamodule).__name__} gives {list(data.input_shape)}")
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(2, *data.input_shape))
        net.train()
    except Exception as exc:
        raise ConfigError(f"{pair}: {type(net).__name__} fails on a batch of shape {list(data.input_shape)}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{pair}: {type(net).__name__} returns a {type(out).__name__}, not a tensor of outputs")
    width = out.shape[-1] if out.ndim > 1 else 1
    classes = getattr(getattr(model, "hparams", {}), "get", lambda *_: None)("num_classes")
    if data.classification and classes is not None and classes != data.num_classes:
        raise ConfigError(f"{pair}: model.num_classes={classes} but the data has {data.num_classes} classes")
    if width != data.num_outputs:
        what = "target values" if not data.classification else (
            "logit (binary targets)" if data.target_kind == "binary" else f"logits for {data.num_classes} classes")
        raise ConfigError(f"{pair}: the net gives {width} outputs, the task needs {data.num_outputs} {what}")
    return data
