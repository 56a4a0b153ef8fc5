"""The confusion matrix, drawn cell by cell with Pillow."""

from __future__ import annotations

import torch

from lightning_modules.pictures.drawing import font, paste_text, viridis
from lightning_modules.pictures.publishing import title
from lightning_modules.pictures.stage_picture import StagePicture, predictions


class ConfusionMatrixPicture(StagePicture):
    """``confusion_matrix``, for classification: torchmetrics' confusion matrix over the whole
    validation/test set, rows labelled with the class names (the data module's declared
    ``class_names``, else 0..K-1) and each class's accuracy (the share of its samples predicted right), the overall
    accuracy in the title. Drawn with Pillow, cell by cell (``confusion_matrix_image``), at a
    fraction of a matplotlib figure's cost (benchmarks/pictures.py)."""

    name = "confusion_matrix"

    def __init__(self, every_n_epochs: int = 1, max_share: float | None = 0.02):
        super().__init__(every_n_epochs, max_share)
        self.reset()

    def reset(self) -> None:
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def applies(self, data) -> bool:
        return data.classification

    def collect(self, pl_module, x, y, outputs) -> None:
        self.preds.append(predictions(pl_module, outputs, x, classes=True).cpu())
        self.targets.append(y.detach().cpu())

    def draw(self, stage, trainer, pl_module):
        from torchmetrics.functional.classification import multiclass_confusion_matrix

        if not self.preds:
            return None
        preds, targets = torch.cat(self.preds), torch.cat(self.targets)
        names = self.data.class_names
        count = max(len(names or []), self.data.num_classes, int(max(preds.max(), targets.max())) + 1)
        names = [str(n) for n in names] if names and len(names) == count else [str(i) for i in range(count)]
        confmat = multiclass_confusion_matrix(preds, targets, num_classes=count)
        accuracy = (confmat.diag().sum() / confmat.sum()).item()
        return confusion_matrix_image(confmat, names, title(stage, trainer, f"accuracy {accuracy:.1%}"))


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
