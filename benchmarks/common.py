"""Shared by the sections: composing conf/run.yaml as experiments/run.py does, and timing one
epoch of the framework (``experiments.pipeline.fit_and_test``) or of the plain loop on the same config."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from experiments.config.hardware import skip_gpu_probe_without_gpu  # noqa: E402

TIMER = "+callbacks.epoch_timer._target_=benchmarks.timing.EpochTimer"
# The framework sets this in every run; the plain loop, timed in the same process, must not pay
# the per-step GPU probe that importing Lightning switches on: a loop without Lightning never does.
skip_gpu_probe_without_gpu()


def compose_run(overrides: list[str]) -> DictConfig:
    """conf/run.yaml with ``overrides``, as ``python experiments/run.py OVERRIDES`` composes it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="run", overrides=overrides)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_overrides(device: str) -> list[str]:
    """Both sides run on the same device: cpu, or cuda with the data held on the GPU."""
    if device == "cuda":
        return ["trainer.accelerator=gpu", "data.on_device=true"]
    return ["trainer.accelerator=cpu"]


def framework_epoch(overrides: list[str], workdir: str | os.PathLike, device: str = "cpu",
                    epochs: int = 1) -> dict[str, Any]:
    """One epoch (the last of ``epochs``: all are in ``EpochTimer.records``) through
    ``experiments.pipeline.fit_and_test`` in a ``RunFolder`` (callbacks, loggers, checkpointing as
    configured, and the run folder's signal and NaN guards), as experiments/run.py
    runs it, timed in-process by :class:`benchmarks.timing.EpochTimer`. Console output (progress
    bar, model summary) is produced as usual but sent to a buffer."""
    from benchmarks.timing import EpochTimer
    from experiments import pipeline
    from experiments.runs import console
    from experiments.runs.folder import RunFolder

    console.quiet()
    out = tempfile.mkdtemp(prefix="fw-", dir=workdir)
    cfg = compose_run([*overrides, *device_overrides(device), f"trainer.max_epochs={epochs}", "test=false",
                       f"paths.output_dir={out}", TIMER])
    EpochTimer.records.clear()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), RunFolder(cfg) as folder:
        metrics = pipeline.fit_and_test(cfg, folder)
        folder.finish(metrics, pipeline.monitored_value(cfg, metrics))
    if not EpochTimer.records:
        raise RuntimeError(f"no epoch was timed for {overrides}")
    record = dict(EpochTimer.records[-1])
    record["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, float)}
    return record


WARMUP = ["trainer.limit_train_batches=5", "trainer.limit_val_batches=2"]


def framework_warmup(overrides: list[str], workdir: str | os.PathLike, device: str = "cpu") -> None:
    """A few untimed framework steps: the first fit in a process pays one-off costs (lazy imports,
    the first checkpoint and event file) that are no part of an epoch."""
    framework_epoch([*overrides, *WARMUP], workdir, device)


class PlainSetup:
    """What the plain loop needs from a config: the net, optimizer, loss, data tensors and the
    batch transform, built from the same config entries the framework instantiates."""

    def __init__(self, overrides: list[str], device: str = "cpu"):
        cfg = compose_run([*overrides, *device_overrides(device), "paths.output_dir=unused"])
        self.cfg = cfg
        self.device = torch.device(device)
        self.seed = cfg.get("seed")
        self.datamodule = instantiate(cfg.data, _convert_="object")
        started = time.perf_counter()
        self.datamodule.setup("fit")
        # Loading the data is part of the framework's fit (trainer.fit sets the data module up):
        # a timing of the plain loop's fit adds it (benchmarks/time_to_accuracy.py).
        self.data_setup_s = time.perf_counter() - started
        splits = self.datamodule.splits
        self.train = tuple(t.to(self.device) for t in splits["train"])
        self.val = tuple(t.to(self.device) for t in splits["val"])
        self.test = tuple(t.to(self.device) for t in splits["test"])
        self.batch_size = self.datamodule.batch_size
        self.eval_batch_size = self.datamodule.eval_batch_size
        self.augment = getattr(self.datamodule, "augment", None)  # training batches only
        self.epochs = int(cfg.trainer.max_epochs)
        # the test's test-time augmentation (model.tta), as the task applies it
        self.tta = instantiate(cfg.model.tta) if cfg.model.get("tta") else None

    def augment_for(self, epoch: int):
        """The training batches' augmentation in ``epoch`` (alternating flips depend on it), or None."""
        return None if self.augment is None else functools.partial(self.datamodule.augment_batch, epoch=epoch)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        # The data module's own per-batch step (Fashion-MNIST: uint8 -> normalised float).
        return self.datamodule.on_after_batch_transfer((x, None), 0)[0]

    def scheduler(self, optimizer) -> tuple[Any, str]:
        """The config's LR schedule and its interval ('step' or 'epoch'), sized as TaskModule
        sizes it; (None, 'epoch') without one."""
        from lightning_modules.task import schedule_length_kwargs

        model_cfg = self.cfg.model
        if model_cfg.get("scheduler") is None:
            return None, "epoch"
        factory = instantiate(model_cfg.scheduler, _convert_="object")
        interval = str(model_cfg.get("scheduler_interval", "epoch"))
        steps = -(-len(self.train[0]) // self.batch_size)
        length = steps * self.epochs if interval == "step" else self.epochs
        return factory(optimizer=optimizer, **schedule_length_kwargs(factory, length)), interval

    def build(self):
        """A fresh net and optimizer (seeded as the framework seeds), the loss and the argmax."""
        if self.seed is not None:
            torch.manual_seed(self.seed)
        model_cfg = self.cfg.model
        net = instantiate(model_cfg.net, _convert_="object").to(self.device)
        optimizer = instantiate(model_cfg.optimizer, _convert_="object")(params=net.parameters())
        target = str(model_cfg._target_)
        if target.endswith("ClassificationModule"):
            smoothing = float(model_cfg.get("label_smoothing", 0.0) or 0.0)
            if int(model_cfg.num_classes) == 2:
                def loss_fn(out, y):
                    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())

                def predict(out):
                    return (out.squeeze(-1) > 0).long()
            else:
                def loss_fn(out, y):
                    return F.cross_entropy(out, y, label_smoothing=smoothing)

                def predict(out):
                    return out.argmax(-1)
            return net, optimizer, loss_fn, predict
        from lightning_modules.regression import LOSSES

        return net, optimizer, LOSSES[str(model_cfg.get("loss", "l1"))](), None


def plain_epoch_of(setup: PlainSetup, max_steps: int | None = None) -> dict[str, Any]:
    from benchmarks.plain import plain_epoch

    net, optimizer, loss_fn, predict = setup.build()
    record = plain_epoch(net, optimizer, loss_fn, setup.train, setup.val, setup.batch_size,
                         setup.eval_batch_size, transform=setup.transform, predict=predict,
                         max_steps=max_steps, sync=lambda: sync(setup.device))
    return record


def lightning_epoch_of(setup: PlainSetup) -> dict[str, Any]:
    """One epoch of the plain loop's net, optimizer and loss trained by Lightning and nothing else:
    a LightningModule whose steps are forward and loss (validation: loss and correct count, as
    the plain loop's), in a Trainer without logger, checkpoints, callbacks, progress bar, summary
    or sanity check, on the data module's own batches. What any framework built on Lightning's
    loop pays at least; timed over the same span by :class:`benchmarks.timing.EpochTimer`."""
    import lightning as L

    from benchmarks.timing import EpochTimer

    net, optimizer, loss_fn, predict = setup.build()

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx):
            return loss_fn(self.net(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            out = self.net(batch[0])
            return loss_fn(out, batch[1]), (predict(out) == batch[1]).sum() if predict else None

        def configure_optimizers(self):
            return optimizer

    EpochTimer.records.clear()
    trainer = L.Trainer(max_epochs=1, accelerator=setup.device.type, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[EpochTimer()])
    trainer.fit(Bare(), datamodule=setup.datamodule)
    return dict(EpochTimer.records[-1])


def interleaved(setup: PlainSetup, overrides: list[str], workdir: str | os.PathLike, device: str,
                repeats: int, floor: bool = False) -> dict[str, list[dict[str, Any]]]:
    """``repeats`` epochs of the plain loop, of the framework (and with ``floor``, of bare
    Lightning: ``lightning_epoch_of``), rotating who goes first so that a drift in machine load
    hits every side alike; returns their records by side: plain, framework (, lightning)."""
    sides = ["plain", "framework"] + (["lightning"] if floor else [])
    records: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    run = {"plain": lambda: plain_epoch_of(setup), "framework": lambda: framework_epoch(overrides, workdir, device),
           "lightning": lambda: lightning_epoch_of(setup)}
    for r in range(repeats):
        for side in sides[r % len(sides):] + sides[: r % len(sides)]:
            records[side].append(run[side]())
    return records
