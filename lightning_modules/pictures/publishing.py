"""Publishing a picture: logged to every TensorBoardLogger of the trainer and written as
``<trainer.default_root_dir>/pictures/<stage>_<name>.png`` (the latest one), encoded once for both."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torchvision.io import encode_png

from lightning_modules.atomic_files import write_atomic


def tensorboards(trainer: Trainer) -> list[TensorBoardLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def publish(trainer: Trainer, tag: str, image: torch.Tensor) -> Path:
    """Log ``image`` (uint8, C x H x W) under ``tag`` to every TensorBoard and write it as a PNG,
    encoded once for both (``add_image`` would encode it again, at twice the cost)."""
    png = encode_png(image.cpu(), compression_level=3)  # the default (6) costs much more time for a little less size
    summary = Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=image.shape[-2], width=image.shape[-1], colorspace=image.shape[0],
        encoded_image_string=png.numpy().tobytes()))])
    for logger in tensorboards(trainer):
        writer = logger.experiment
        if writer.file_writer is None:  # not opened yet: add_image opens it
            writer.add_image(tag, image, global_step=trainer.global_step)
        else:
            writer.file_writer.add_summary(summary, trainer.global_step)
    path = Path(trainer.default_root_dir) / "pictures" / f"{tag.replace('/', '_')}.png"
    write_atomic(path, png.numpy().tobytes())  # a viewer never sees half a file
    return path


def title(stage: str, trainer: Trainer, what: str) -> str:
    """``val: <what> (epoch N)``; a test is of the tested checkpoint, whatever epoch it came from."""
    return f"{stage}: {what} (epoch {trainer.current_epoch})" if stage == "val" else f"{stage}: {what}"
