"""Drawing helpers: a matplotlib figure drawn off-screen and turned into pixels, and what the
Pillow pictures need (the font, viridis' colours, turned text)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


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


def font_path() -> str:
    """A TrueType font for labels: the DejaVu Sans that ships with matplotlib."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


@functools.lru_cache(maxsize=16)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(), size)


@functools.lru_cache(maxsize=1)
def viridis() -> list[tuple[int, int, int]]:
    """matplotlib's viridis colour map as 256 RGB triples."""
    import matplotlib

    return [tuple(round(255 * c) for c in matplotlib.colormaps["viridis"](i)[:3]) for i in range(256)]


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
