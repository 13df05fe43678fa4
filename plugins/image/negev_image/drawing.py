"""Evidence drawn over images: one PNG per class and a grid summary per image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from negev.plugins.render import evidence_rgb
from negev_image.localization import upsample_maps

__all__ = ["evidence_overlay", "grid"]

HIGH_OUTLINE = (0, 200, 0)
LOW_OUTLINE = (220, 0, 0)


def evidence_overlay(
    image: Tensor,
    class_map: Tensor,
    title: str,
    selected: tuple[Tensor, Tensor] | None = None,
    side: int = 256,
) -> Image.Image:
    """The image (3, H, W) uint8, shown ``side`` pixels wide, shaded by a (h, w) class map:
    green where it is evidence for the class, red where against (opacity by |value|), the regions
    the pooling kept outlined (green: k+ top, red: k- bottom), ``title`` on top."""
    pixels = torch.nn.functional.interpolate(
        image[None].float(), size=(side, side), mode="bilinear", align_corners=False
    )[0]
    base = pixels.permute(1, 2, 0).numpy() / 255
    values = upsample_maps(class_map[None], (side, side))[0].numpy()
    scale = float(np.abs(values).max()) or 1.0
    relative = np.clip(values / scale, -1, 1)
    colour = np.where(relative[..., None] >= 0, [0.0, 0.85, 0.0], [0.9, 0.0, 0.0])
    opacity = 0.65 * np.abs(relative)[..., None]
    shaded = base * (1 - opacity) + colour * opacity
    canvas = Image.fromarray((shaded * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    if selected is not None:
        rows, cols = class_map.shape
        for cells, outline in ((selected[0], HIGH_OUTLINE), (selected[1], LOW_OUTLINE)):
            for r, c in cells.nonzero().tolist():
                x0, y0 = c * side / cols, r * side / rows
                x1, y1 = (c + 1) * side / cols - 1, (r + 1) * side / rows - 1
                draw.rectangle((x0, y0, x1, y1), outline=outline, width=2)
    band = Image.new("RGB", (side, 18), tuple(int(255 * v) for v in evidence_rgb(0.0)))
    ImageDraw.Draw(band).text((4, 3), title, fill=(0, 0, 0))
    framed = Image.new("RGB", (side, side + 18))
    framed.paste(band, (0, 0))
    framed.paste(canvas, (0, 18))
    return framed


def grid(tiles: list[Image.Image], path: Path, columns: int = 6) -> Path:
    """Save ``tiles`` (same size) as one image, ``columns`` per row."""
    width, height = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (width * min(columns, len(tiles)), height * rows), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * height))
    sheet.save(path)
    return path
