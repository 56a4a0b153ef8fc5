"""Pictures for TensorBoard, drawn from the batches Lightning hands to the validation and test
hooks (so any LightningDataModule works, a DataLoader-based one included): the decision boundary
of a 2-D classifier, the fit of a regression, labelled images, the confusion matrix, the model graph.

Each picture is logged under ``val/<name>`` after a validation (never the sanity check; in fit
as often as its time budget allows, see ``StagePicture``) and ``test/<name>`` after a test, to
every TensorBoardLogger of the trainer, and saved as ``<trainer.default_root_dir>/pictures/
<stage>_<name>.png`` (the latest one). A picture that does not apply to the data, or a trainer
without a TensorBoardLogger, draws nothing.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torchvision.io import encode_png
from torchvision.utils import draw_bounding_boxes, make_grid

log = logging.getLogger(__name__)


def tensorboards(trainer: Trainer) -> list[TensorBoardLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def publish(trainer: Trainer, tag: str, image: torch.Tensor) -> Path:
    """Log ``image`` (uint8, C x H x W) under ``tag`` to every TensorBoard and write it as a PNG,
    encoded once for both (``add_image`` would encode it again, at twice the cost)."""
    png = encode_png(image.cpu(), compression_level=3)  # 6 takes twice as long, for 10% less
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
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".png.partial")  # a viewer never sees half a file
    try:
        partial.write_bytes(png.numpy().tobytes())  # an OSError that says why (a full disk), unlike write_file's
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def title(stage: str, trainer: Trainer, what: str) -> str:
    """``val: <what> (epoch N)``; a test is of the tested checkpoint, whatever epoch it came from."""
    return f"{stage}: {what} (epoch {trainer.current_epoch})" if stage == "val" else f"{stage}: {what}"


def figure(width: float, height: float, margins: tuple[float, float, float, float]):
    """A matplotlib figure drawn off-screen (no pyplot state, no display needed) and its axes,
    placed by fixed ``margins`` (left, bottom, right, top): a layout engine costs a third more."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(*margins)
    return fig, fig.add_subplot()


def figure_to_image(fig) -> torch.Tensor:
    """The figure's pixels as a uint8 RGB tensor, C x H x W."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    height, width = canvas.get_width_height()[::-1]
    return rgba.view(height, width, 4)[..., :3].permute(2, 0, 1).contiguous()


def predictions(pl_module: LightningModule, outputs: Any, x: torch.Tensor, classes: bool) -> torch.Tensor:
    """The step's predictions (``outputs["preds"]``: class indices or regression values); when the
    step returns none, the model's own on ``x`` (for ``classes``, one logit: > 0; several: argmax)."""
    if isinstance(outputs, dict) and "preds" in outputs:
        return outputs["preds"].detach()
    with torch.no_grad():
        out = pl_module(x)
    if classes:
        return (out.squeeze(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
    return out


class StagePicture(Callback):
    """Collects from each validation/test batch (``collect``) and draws at the epoch's end
    (``draw``); subclasses say what they keep and how it looks.

    A picture costs about the same whatever the model (20-70 ms on an idle 2-core CPU, several
    times that under load), more than a whole epoch of a small model (XOR). So in fit, a validation picture is drawn only when the time
    since the last drawing (or since fit started) is at least its cost over ``max_share``: a picture
    takes about ``max_share`` of the run. Its cost is taken as ``ASSUMED_COST`` until it was drawn
    once. The last epoch's (``max_epochs``) and the test pictures are always drawn;
    ``max_share=null`` draws every ``every_n_epochs``-th validation.
    """

    name = ""
    ASSUMED_COST = 0.1  # seconds, until measured: the costliest picture, a matplotlib one, under some load

    def __init__(self, every_n_epochs: int = 1, max_share: float | None = 0.02):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if max_share is not None and not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1] or null, got {max_share}")
        self.every_n_epochs, self.max_share = every_n_epochs, max_share
        self.active = False
        self.cost, self.last_cost = 0.0, self.ASSUMED_COST  # seconds: this epoch's, the last drawing's
        self.since: float | None = None  # time.perf_counter() at fit start or the end of the last drawing

    def reset(self) -> None:
        raise NotImplementedError

    def collect(self, pl_module: LightningModule, x: torch.Tensor, y: torch.Tensor, outputs: Any) -> None:
        raise NotImplementedError

    def draw(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> torch.Tensor | None:
        raise NotImplementedError

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.since = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.since = None  # a validate() or test() after fit draws

    def due(self, trainer: Trainer, stage: str) -> bool:
        if stage == "test" or (trainer.max_epochs is not None and trainer.current_epoch == trainer.max_epochs - 1):
            return True
        if trainer.current_epoch % self.every_n_epochs:
            return False
        if self.max_share is None or self.since is None:
            return True
        return self.last_cost <= self.max_share * (time.perf_counter() - self.since)

    def _start(self, trainer: Trainer, stage: str) -> None:
        self.active = (trainer.is_global_zero and not trainer.sanity_checking and bool(tensorboards(trainer))
                       and self.due(trainer, stage))
        self.cost = 0.0
        self.reset()

    def _batch(self, pl_module: LightningModule, outputs: Any, batch: Any) -> None:
        if self.active and isinstance(batch, (tuple, list)) and len(batch) >= 2:
            started = time.perf_counter()
            x, y = batch[0], batch[1]
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                self.collect(pl_module, x, y, outputs)
            self.cost += time.perf_counter() - started

    def _end(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.active:
            started = time.perf_counter()
            image = self.draw(stage, trainer, pl_module)
            if image is not None:
                publish(trainer, f"{stage}/{self.name}", image)
                self.since = time.perf_counter()
                self.last_cost = self.cost + self.since - started
        self.active = False
        self.reset()  # hold no tensors between epochs

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, "val")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch(pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("val", trainer, pl_module)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, "test")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch(pl_module, outputs, batch)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("test", trainer, pl_module)


class Sample:
    """The first ``limit`` rows of several tensors, gathered over batches on the CPU."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.count = limit, [], 0

    def add(self, *tensors: torch.Tensor) -> None:
        take = min(self.limit - self.count, len(tensors[0]))
        if take > 0:
            self.parts.append([t[:take].detach().cpu() for t in tensors])
            self.count += take

    def room(self) -> int:
        return self.limit - self.count

    def tensors(self) -> list[torch.Tensor] | None:
        return [torch.cat(column) for column in zip(*self.parts)] if self.parts else None


def is_class_target(y: torch.Tensor) -> bool:
    return not y.is_floating_point() and y.ndim == 1


class DecisionBoundary(StagePicture):
    """``decision_boundary``, for a classifier of 2-D points (XOR): the model's probability of
    class 1 over the plane around the points (the predicted class for more than two classes),
    with up to ``max_points`` points coloured by their true class, as in the XOR tutorial."""

    name = "decision_boundary"

    def __init__(self, max_points: int = 500, resolution: int = 100, every_n_epochs: int = 1,
                 max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.max_points, self.resolution = max_points, resolution
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.max_points)

    def collect(self, pl_module, x, y, outputs) -> None:
        if x.ndim == 2 and x.shape[1] == 2 and is_class_target(y):
            self.sample.add(x, y)

    def draw(self, stage, trainer, pl_module):
        if (points := self.sample.tensors()) is None:
            return None
        x, y = points
        lo, hi = x.min(0).values, x.max(0).values
        margin = 0.15 * (hi - lo) + 1e-3
        lo, hi = (lo - margin).tolist(), (hi + margin).tolist()
        xs = torch.linspace(lo[0], hi[0], self.resolution)
        ys = torch.linspace(lo[1], hi[1], self.resolution)
        plane = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
        with torch.no_grad():
            out = pl_module(plane.to(pl_module.device, x.dtype)).float().cpu()
        fig, ax = figure(5.2, 4.4, margins=(0.14, 0.11, 0.97, 0.92))
        shown = dict(origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto", interpolation="bilinear")
        if out.shape[-1] == 1:  # p(class 1), from blue (0) through white to red (1)
            ax.imshow(torch.sigmoid(out).reshape(self.resolution, -1), cmap="RdBu_r", vmin=0, vmax=1, alpha=0.6,
                      **shown)
        else:  # the predicted class's colour
            ax.imshow(out.argmax(-1).reshape(self.resolution, -1), cmap="tab10", vmin=0, vmax=9, alpha=0.35,
                      **shown)
        names = getattr(trainer.datamodule, "class_names", None)
        for k in y.unique().tolist():
            label = f"class {names[k] if names and k < len(names) else k}"
            ax.scatter(*x[y == k].T, s=14, color=f"C{k}" if out.shape[-1] > 1 else ("#2166ac", "#b2182b")[k % 2],
                       edgecolors="black", linewidths=0.6, label=label)  # dark rims: visible on their own colour
        ax.legend(loc="upper right", fontsize=9, framealpha=0.8)
        what = "p(class 1), blue 0 to red 1" if out.shape[-1] == 1 else "predicted class"
        ax.set(xlabel="x1", ylabel="x2", title=title(stage, trainer, what))
        return figure_to_image(fig)


class RegressionFit(StagePicture):
    """``fit``, for regression: with one input and one output, the training points (a sample
    taken in the first training epoch of the fit), the validation/test points and the model's
    prediction line; otherwise predicted against target for every output, with the diagonal."""

    name = "fit"

    def __init__(self, max_points: int = 1000, every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.max_points = max_points
        self.train_sample, self.sampling_train = Sample(max_points), False
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.max_points)

    def on_fit_start(self, trainer, pl_module) -> None:
        super().on_fit_start(trainer, pl_module)
        self.train_sample, self.sampling_train = Sample(self.max_points), trainer.is_global_zero

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.sampling_train and isinstance(batch, (tuple, list)) and len(batch) >= 2:
            x, y = batch[0], batch[1]
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and y.is_floating_point():
                self.train_sample.add(x, y)
            self.sampling_train = self.train_sample.room() > 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.sampling_train = False  # the first epoch's sample is enough: no work in later steps

    def collect(self, pl_module, x, y, outputs) -> None:
        if y.is_floating_point() and self.sample.room() > 0:
            self.sample.add(x, y, predictions(pl_module, outputs, x[: self.sample.room()], classes=False))

    def draw(self, stage, trainer, pl_module):
        if (points := self.sample.tensors()) is None:
            return None
        x, y, pred = (t.float() for t in points)
        fig, ax = figure(5.2, 4.4, margins=(0.14, 0.11, 0.97, 0.92))
        if x[0].numel() == 1 and y[0].numel() == 1:
            train = self.train_sample.tensors()
            every_x = x.flatten() if train is None else torch.cat([x.flatten(), train[0].float().flatten()])
            line_x = torch.linspace(every_x.min().item(), every_x.max().item(), 200).reshape(-1, *x.shape[1:])
            with torch.no_grad():
                line_y = pl_module(line_x.to(pl_module.device, points[0].dtype)).float().cpu().flatten()
            if train is not None:
                ax.scatter(train[0].flatten(), train[1].flatten(), s=10, color="#1f77b4", alpha=0.6, label="train")
            ax.scatter(x.flatten(), y.flatten(), s=14, color="#ff7f0e", label=stage)
            ax.plot(line_x.flatten(), line_y, color="#d62728", linewidth=2, label="model")
            ax.set(xlabel="x", ylabel="y", title=title(stage, trainer, "fit"))
        else:
            target, predicted = y.flatten(), pred.flatten()
            lo, hi = min(target.min(), predicted.min()).item(), max(target.max(), predicted.max()).item()
            ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="predicted = target")
            ax.scatter(target, predicted, s=6, alpha=0.5, color="#ff7f0e", label=f"{stage}, every output")
            ax.set(xlabel="target", ylabel="predicted", title=title(stage, trainer, "predicted vs target"))
        ax.legend(loc="best", fontsize=9)
        return figure_to_image(fig)


def font_path() -> str:
    """A TrueType font for labels: the DejaVu Sans that ships with matplotlib."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


class ImagePredictionGrid(StagePicture):
    """``predictions``, for image data: the first ``num_images`` images, ``per_row`` to a row and
    upscaled ``scale`` times, each captioned with the predicted class, framed green when right and
    red with the true class in brackets when wrong. Normalised images are rescaled for display."""

    name = "predictions"

    def __init__(self, num_images: int = 16, per_row: int = 4, scale: int = 4, font_size: int = 14,
                 every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.num_images, self.per_row, self.scale, self.font_size = num_images, per_row, scale, font_size
        self.padding = 2
        self.reset()

    def reset(self) -> None:
        self.sample = Sample(self.num_images)

    def collect(self, pl_module, x, y, outputs) -> None:
        if x.ndim == 4 and is_class_target(y) and (room := self.sample.room()) > 0:
            self.sample.add(x, y, predictions(pl_module, outputs, x[:room], classes=True))

    def draw(self, stage, trainer, pl_module):
        if (sample := self.sample.tensors()) is None:
            return None
        images, targets, preds = sample
        return self.grid(images, preds, targets, getattr(trainer.datamodule, "class_names", None))

    @staticmethod
    def displayable(images: torch.Tensor) -> torch.Tensor:
        """uint8 as it is; anything else (e.g. normalised floats) stretched over 0-255."""
        if images.dtype == torch.uint8:
            return images
        images = images.float()
        lo, hi = images.min(), images.max()
        return ((images - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8)

    def grid(self, images, preds, targets, names=None) -> torch.Tensor:
        """The tiles, each a caption strip over the upscaled image; all frames and captions are
        drawn in one call (a call per tile cost 3x as much)."""
        count = int(max(preds.max(), targets.max())) + 1
        names = names if names and len(names) >= count else [str(i) for i in range(count)]
        up = F.interpolate(self.displayable(images).float(), scale_factor=self.scale, mode="nearest").to(torch.uint8)
        if up.shape[1] == 1:
            up = up.expand(-1, 3, -1, -1)
        caption = 2 * self.font_size + 10  # two lines: predicted, (true)
        tiles = F.pad(up, (0, 0, caption, 0))
        grid = make_grid(tiles, nrow=self.per_row, padding=self.padding)
        h, w = tiles.shape[-2:]
        i = torch.arange(len(tiles))
        x0 = (i % self.per_row) * (w + self.padding) + self.padding
        y0 = (i // self.per_row) * (h + self.padding) + self.padding
        boxes = torch.stack([x0, y0, x0 + w - 1, y0 + h - 1], dim=1)
        right = (preds == targets).tolist()
        labels = [names[p] if ok else f"{names[p]}\n({names[t]})"
                  for p, t, ok in zip(preds.tolist(), targets.tolist(), right)]
        colors = ["lime" if ok else "red" for ok in right]
        return draw_bounding_boxes(grid, boxes, labels=labels, colors=colors, width=2, font=font_path(),
                                   font_size=self.font_size)


class ConfusionMatrixPicture(StagePicture):
    """``confusion_matrix``, for classification: torchmetrics' confusion matrix over the whole
    validation/test set, rows labelled with the class names (the data module's ``class_names``,
    else 0..K-1) and each class's accuracy (the share of its samples predicted right), the overall
    accuracy in the title. Drawn with Pillow, cell by cell (``confusion_matrix_image``): 10 ms
    where matplotlib's figure took 170 ms, which is 5% of a LeNet epoch on a 2-core CPU."""

    name = "confusion_matrix"

    def __init__(self, every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.reset()

    def reset(self) -> None:
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def collect(self, pl_module, x, y, outputs) -> None:
        if is_class_target(y):
            self.preds.append(predictions(pl_module, outputs, x, classes=True).cpu())
            self.targets.append(y.detach().cpu())

    def draw(self, stage, trainer, pl_module):
        from torchmetrics.functional.classification import multiclass_confusion_matrix

        if not self.preds:
            return None
        preds, targets = torch.cat(self.preds), torch.cat(self.targets)
        names = getattr(trainer.datamodule, "class_names", None)
        count = max(len(names or []), int(max(preds.max(), targets.max())) + 1)
        names = [str(n) for n in names] if names and len(names) == count else [str(i) for i in range(count)]
        confmat = multiclass_confusion_matrix(preds, targets, num_classes=count)
        accuracy = (confmat.diag().sum() / confmat.sum()).item()
        return confusion_matrix_image(confmat, names, title(stage, trainer, f"accuracy {accuracy:.1%}"))


@functools.lru_cache(maxsize=16)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(), size)


@functools.lru_cache(maxsize=1)
def viridis() -> list[tuple[int, int, int]]:
    """matplotlib's viridis colour map as 256 RGB triples."""
    import matplotlib

    return [tuple(round(255 * c) for c in matplotlib.colormaps["viridis"](i)[:3]) for i in range(256)]


def confusion_matrix_image(confmat: torch.Tensor, names: list[str], heading: str) -> torch.Tensor:
    """A K x K count matrix as a uint8 RGB picture (C x H x W): viridis cells scaled to the largest
    count, the counts written in the cells while they fit (K <= 20), true classes down the left
    with their accuracy, predicted classes along the bottom at 45 degrees."""
    from PIL import Image, ImageDraw

    count = len(names)
    cell = max(12, min(110, 520 // count))  # 2 classes: 110 px, 10: 52 px, 40: 13 px
    label_size = 13 if count <= 20 else 9
    per_class = (confmat.diag() / confmat.sum(1).clamp_min(1)).tolist()
    rows = [f"{n}  {a:.0%}" for n, a in zip(names, per_class)]
    row_font, title_font, axis_font = font(label_size), font(16), font(14)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    row_width = max(measure.textlength(r, font=row_font) for r in rows)
    column_width = max(measure.textlength(n, font=row_font) for n in names)
    left = int(row_width) + 48  # row labels, and the axis name turned upright beside them
    top, side = 44, cell * count
    bottom = int(column_width * 0.71) + label_size + 44  # labels at 45 degrees, then the axis name
    heading_width = measure.textlength(heading, font=title_font)
    width, height = int(max(left + side + 24, heading_width + 24, 360)), top + side + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((max(left + side / 2, heading_width / 2 + 12), top / 2), heading, fill="black", font=title_font,
              anchor="mm")

    colours, largest = viridis(), max(int(confmat.max()), 1)
    cell_font = font(max(8, min(18, int(cell * 0.3))))
    for i, row in enumerate(confmat.tolist()):
        for j, value in enumerate(row):
            colour = colours[round(255 * value / largest)]
            x0, y0 = left + j * cell, top + i * cell
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=colour)
            if count <= 20:  # dark text on the bright end of the map, white on the dark end
                ink = "black" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140 else "white"
                draw.text((x0 + cell / 2, y0 + cell / 2), str(value), fill=ink, font=cell_font, anchor="mm")
    draw.rectangle((left - 1, top - 1, left + side, top + side), outline="black")
    for i, label in enumerate(rows):
        draw.text((left - 6, top + i * cell + cell / 2), label, fill="black", font=row_font, anchor="rm")
    for j, name in enumerate(names):
        paste_text(image, name, row_font, (left + j * cell + cell / 2, top + side + 6), angle=45)
    draw.text((left + side / 2, height - 14), "predicted class", fill="black", font=axis_font, anchor="mm")
    paste_text(image, "true class (its accuracy)", axis_font, (4, top + side / 2), angle=90, centre=True)
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width, 3).permute(2, 0, 1)


def paste_text(image, text: str, font_, at: tuple[float, float], angle: int, centre: bool = False) -> None:
    """Black ``text`` turned ``angle`` degrees anticlockwise; by default its end (top right) is at
    ``at``, as tick labels hang from an axis; ``centre``: its left edge at ``at[0]``, centred on ``at[1]``."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = font_.getbbox(text)
    mask = Image.new("L", (x1 + 2, y1 + 2), 0)
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font_)
    mask = mask.rotate(angle, expand=True)
    if centre:
        box = (int(at[0]), int(at[1] - mask.height / 2))
    else:
        box = (int(at[0] - mask.width), int(at[1]))
    image.paste((0, 0, 0), box, mask)


class ModelGraph(Callback):
    """The model's graph in TensorBoard's Graphs tab, traced once per fit on one real sample of
    the first validation batch, in eval mode; a net that cannot be traced is skipped with a
    one-line note. That batch is the sanity check's when there is one (the default), so the
    tracing (20-60 ms) comes before training, where Lightning logs its own graph, not in an epoch."""

    def __init__(self):
        self.done = False

    def on_fit_start(self, trainer, pl_module) -> None:
        self.done = not trainer.is_global_zero

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.done:
            return
        self.done = True
        if not (loggers := tensorboards(trainer)) or not isinstance(batch, (tuple, list)):
            return
        with torch.inference_mode(False):  # tracing records a graph: no inference tensors
            sample = batch[0][:1].clone()
            for logger in loggers:
                try:
                    # torch prints its own error line, and warns that jit tracing (add_graph's) is deprecated
                    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                        warnings.filterwarnings("ignore", category=FutureWarning, message=".*jit.*deprecated")
                        logger.experiment.add_graph(pl_module, sample)
                except Exception as exc:  # a net that tracing does not support: no graph, no failure
                    log.info("No model graph in TensorBoard: tracing %s failed (%s: %s)",
                             type(pl_module).__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
