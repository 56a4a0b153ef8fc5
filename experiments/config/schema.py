"""Typed schemas of the objects the configs build, checked on the composed config before
anything is built (experiments/config/checks.py), so a wrong type or a misspelt key fails in a second
with one paragraph instead of deep inside a constructor after the imports.

Each schema is a dataclass named after its ``_target_``: its fields are that constructor's
arguments (minus those the code passes, ``CODE_GIVES``), each with the type it accepts.
tests/test_validation.py checks every schema against ``inspect.signature`` of its target, so a
new or renamed argument fails a test until the schema follows. Light: no torch, no Lightning.
A class that is not the project's needs no schema: experiments/config/signatures.py reads its
signature.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

# A nested object config (a node with ``_target_``), checked against its own schema.
Obj = Any


@dataclass(frozen=True)
class AtLeast:
    """A lower bound on a number (``Annotated[int, AtLeast(1)]``)."""

    low: float


BatchSize = Annotated[int, AtLeast(1)]

PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", "64-true", "32-true", "16-true", "bf16-true",
              "16-mixed", "bf16-mixed", "transformer-engine", "transformer-engine-float16")


@dataclass
class Trainer:  # lightning.pytorch.Trainer
    accelerator: str = "auto"
    strategy: Union[str, Obj] = "auto"
    devices: Union[int, str, list[int]] = "auto"
    num_nodes: int = 1
    precision: Optional[Literal[PRECISIONS]] = None  # type: ignore[valid-type]
    logger: Obj = None
    callbacks: Obj = None
    fast_dev_run: Union[bool, int] = False
    max_epochs: Optional[int] = None
    min_epochs: Optional[int] = None
    max_steps: int = -1
    min_steps: Optional[int] = None
    max_time: Union[str, dict, None] = None
    limit_train_batches: Union[int, float, None] = None
    limit_val_batches: Union[int, float, None] = None
    limit_test_batches: Union[int, float, None] = None
    limit_predict_batches: Union[int, float, None] = None
    overfit_batches: Union[int, float] = 0.0
    val_check_interval: Union[int, float, str, dict, None] = None
    check_val_every_n_epoch: Optional[int] = 1
    num_sanity_val_steps: Optional[int] = None
    log_every_n_steps: Optional[int] = None
    enable_checkpointing: Optional[bool] = None
    enable_progress_bar: Optional[bool] = None
    enable_model_summary: Optional[bool] = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: Union[int, float, None] = None
    gradient_clip_algorithm: Optional[Literal["norm", "value"]] = None
    deterministic: Union[bool, Literal["warn"], None] = None
    benchmark: Optional[bool] = None
    inference_mode: bool = True
    use_distributed_sampler: bool = True
    profiler: Union[str, Obj, None] = None
    detect_anomaly: bool = False
    barebones: bool = False
    plugins: Obj = None
    sync_batchnorm: bool = False
    reload_dataloaders_every_n_epochs: int = 0
    default_root_dir: Optional[str] = None
    enable_autolog_hparams: bool = True
    model_registry: Optional[str] = None


# ---------------------------------------------------------------- task modules (model=...)

@dataclass
class ClassificationModule:  # lightning_modules.ClassificationModule
    net: Obj
    optimizer: Obj
    scheduler: Obj = None
    num_classes: int = 10
    label_smoothing: float = 0.0
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    torch_compile: bool = False
    metrics: Optional[dict] = None  # name -> a torchmetrics metric (_target_, _partial_: true)
    tta: Obj = None


@dataclass
class TestTimeAugmentation:  # lightning_modules.tta.TestTimeAugmentation (model.tta)
    flip: bool = True
    translate: int = 0


@dataclass
class RegressionModule:  # lightning_modules.RegressionModule
    net: Obj
    optimizer: Obj
    scheduler: Obj = None
    loss: Literal["l1", "mse", "sse"] = "l1"
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    torch_compile: bool = False
    metrics: Optional[dict] = None  # name -> a torchmetrics metric (_target_, _partial_: true)


@dataclass
class ManualBackpropRegression:  # lightning_modules.ManualBackpropRegression
    net: Obj
    optimizer: Obj
    scheduler: Obj = None
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    torch_compile: bool = False
    metrics: Optional[dict] = None  # name -> a torchmetrics metric (_target_, _partial_: true)


# ---------------------------------------------------------------- nets (model.net)

@dataclass
class LeNet:
    in_channels: int = 1
    num_classes: int = 10


@dataclass
class VGGNet:
    in_channels: int = 1
    num_classes: int = 10
    channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    convs: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 2])
    head_hidden: int = 0
    dropout: float = 0.1
    image_size: int = 28
    channels_last: bool = False
    flip_tta: bool = False
    pool_first: bool = False


@dataclass
class ResNet:
    in_channels: int = 1
    num_classes: int = 10
    widths: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    blocks: list[int] = dataclasses.field(default_factory=lambda: [1, 1, 1])


@dataclass
class AirbenchNet:
    in_channels: int = 1
    num_classes: int = 10
    widths: list[int] = dataclasses.field(default_factory=lambda: [24, 48, 96])
    depth: int = 2
    whitening_kernel: int = 2
    space_to_depth: int = 1
    image_size: int = 28
    channels_last: bool = False
    identity_init: bool = False
    bn_scale: bool = True
    bn_momentum: float = 0.1
    whitening_bias: bool = True


@dataclass
class MLP:
    input_shape: list[int] = dataclasses.field(default_factory=lambda: [1, 28, 28])
    hidden: list[int] = dataclasses.field(default_factory=lambda: [512, 512])
    num_classes: int = 10
    dropout: float = 0.0


@dataclass
class SimpleClassifier:
    num_inputs: int = 2
    num_hidden: int = 4
    num_outputs: int = 1


@dataclass
class LinearRegressor:
    in_features: int = 1
    out_features: int = 1


@dataclass
class TwoLayerNet:
    in_features: int = 1000
    hidden: int = 100
    out_features: int = 10


# ---------------------------------------------------------------- optimizers, schedulers (partial)

@dataclass
class SGD:
    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    maximize: bool = False
    foreach: Optional[bool] = None
    differentiable: bool = False
    fused: Optional[bool] = None


@dataclass
class Adam:
    lr: float = 1e-3
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    foreach: Optional[bool] = None
    maximize: bool = False
    capturable: bool = False
    differentiable: bool = False
    fused: Optional[bool] = None
    decoupled_weight_decay: bool = False


@dataclass
class AdamW:
    lr: float = 1e-3
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01
    amsgrad: bool = False
    maximize: bool = False
    foreach: Optional[bool] = None
    capturable: bool = False
    differentiable: bool = False
    fused: Optional[bool] = None


@dataclass
class OneCycleLR:
    max_lr: Union[float, list[float]]
    total_steps: Optional[int] = None
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    pct_start: float = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    cycle_momentum: bool = True
    base_momentum: Union[float, list[float]] = 0.85
    max_momentum: Union[float, list[float]] = 0.95
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    last_epoch: int = -1


# ---------------------------------------------------------------- data modules (data=...)

@dataclass
class FashionMNISTDataModule:
    data_dir: str = "data"
    val_size: int = 5000
    split_seed: int = 42
    batch_size: BatchSize = 128
    eval_batch_size: Optional[BatchSize] = 1000
    augment: Obj = None
    channels_last: bool = False
    on_device: bool = False
    download: bool = True
    debian_dir: str = "/usr/share/datasets/fashion-mnist"


@dataclass
class XORDataModule:
    train_size: int = 1000
    val_size: int = 500
    test_size: int = 500
    std: float = 0.1
    seed: int = 42
    batch_size: BatchSize = 128
    eval_batch_size: Optional[BatchSize] = None
    on_device: bool = False


@dataclass
class RegressionDataModule:
    generator: str = "linear"
    generator_kwargs: Optional[dict] = None
    train_fraction: float = 0.8
    shuffle_points: bool = False
    seed: int = 42
    batch_size: BatchSize = 64
    eval_batch_size: Optional[BatchSize] = None
    on_device: bool = False


@dataclass
class ImageFolderDataModule:
    root: str
    image_size: Union[int, list[int], None] = None
    channels: Optional[Literal[1, 3]] = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 42
    batch_size: BatchSize = 128
    eval_batch_size: Optional[BatchSize] = None
    augment: Obj = None
    channels_last: bool = False
    on_device: bool = False
    memory_budget_mb: float = 4096
    decode_threads: Optional[Annotated[int, AtLeast(1)]] = None
    num_workers: Annotated[int, AtLeast(0)] = 2


@dataclass
class CSVDataModule:
    path: str
    target: Union[str, list[str]]
    features: Optional[list[str]] = None
    task: Optional[Literal["classification", "regression"]] = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 42
    standardize: bool = True
    batch_size: BatchSize = 64
    eval_batch_size: Optional[BatchSize] = None
    on_device: bool = False


@dataclass
class BatchAugment:
    crop_padding: int = 0
    hflip_p: float = 0.0
    erasing_p: float = 0.0
    erasing_scale: list[float] = dataclasses.field(default_factory=lambda: [0.02, 0.2])
    alternate_flip: bool = False


# ``_target_`` (as the configs spell it) -> its schema.
SCHEMAS: dict[str, type] = {
    "lightning.pytorch.Trainer": Trainer,
    "lightning_modules.ClassificationModule": ClassificationModule,
    "lightning_modules.RegressionModule": RegressionModule,
    "lightning_modules.ManualBackpropRegression": ManualBackpropRegression,
    "lightning_modules.tta.TestTimeAugmentation": TestTimeAugmentation,
    "lightning_modules.nets.LeNet": LeNet,
    "lightning_modules.nets.VGGNet": VGGNet,
    "lightning_modules.nets.ResNet": ResNet,
    "lightning_modules.nets.AirbenchNet": AirbenchNet,
    "lightning_modules.nets.MLP": MLP,
    "lightning_modules.nets.SimpleClassifier": SimpleClassifier,
    "lightning_modules.nets.LinearRegressor": LinearRegressor,
    "lightning_modules.nets.TwoLayerNet": TwoLayerNet,
    "torch.optim.SGD": SGD,
    "torch.optim.Adam": Adam,
    "torch.optim.AdamW": AdamW,
    "torch.optim.lr_scheduler.OneCycleLR": OneCycleLR,
    "datamodules.FashionMNISTDataModule": FashionMNISTDataModule,
    "datamodules.XORDataModule": XORDataModule,
    "datamodules.RegressionDataModule": RegressionDataModule,
    "datamodules.ImageFolderDataModule": ImageFolderDataModule,
    "datamodules.CSVDataModule": CSVDataModule,
    "datamodules.BatchAugment": BatchAugment,
}

# Constructor arguments that the code passes, not the config (the params of a partial optimizer...).
CODE_GIVES: dict[str, tuple[str, ...]] = {
    "torch.optim.SGD": ("params",),
    "torch.optim.Adam": ("params",),
    "torch.optim.AdamW": ("params",),
    "torch.optim.lr_scheduler.OneCycleLR": ("optimizer",),
}


# ---------------------------------------------------------------- checking a config against them

def conforms(value: Any, kind: Any) -> bool:
    """Whether a (resolved) config value is of ``kind``; an int is a float, a bool is not an int."""
    from omegaconf import DictConfig, ListConfig

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if origin is Annotated:
        return conforms(value, args[0]) and all(value >= a.low for a in args[1:] if isinstance(a, AtLeast))
    if origin in (Union, types.UnionType):
        return any(conforms(value, k) for k in args)
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is dict or origin is dict:
        return isinstance(value, (dict, DictConfig))
    if origin is list:
        return isinstance(value, (list, tuple, ListConfig)) and all(conforms(v, args[0]) for v in value)
    raise TypeError(f"schema type {kind} is not supported")


def describe(kind: Any) -> str:
    """``kind`` in words, for an error message."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return "anything"
    if origin is Annotated:
        return " ".join([describe(args[0]), *(f">= {a.low:g}" for a in args[1:] if isinstance(a, AtLeast))])
    if origin in (Union, types.UnionType):
        kinds = [k for k in args if not (k is int and float in args)]  # a number includes the integers
        return " or ".join(dict.fromkeys(describe(k) for k in kinds))
    if origin is Literal:
        return "one of " + ", ".join(dict.fromkeys(str(a) for a in args))
    if origin is list:
        word = WORDS.get(args[0])
        return f"a list of {word.split(' ', 1)[1]}s" if word and " " in word else "a list"
    return WORDS.get(kind, getattr(kind, "__name__", str(kind)))


WORDS = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
         dict: "a mapping {key: value}"}
