"""One image's model input: read (JPEGs decoded at reduced size when much larger than needed),
cropped, resized, flipped, normalised. What :meth:`ImagePlugin.load_item` runs in the
DataLoader's workers.

Training: a random resized crop (an area share in ``crop_scale`` of the image, an aspect ratio
in [3/4, 4/3], the sampling of torchvision's ``RandomResizedCrop``) and a horizontal flip with
probability 1/2, drawn from the generator the engine seeds for the item. Evaluation: the whole
image at ``size`` (a test-time view may change the size and flip it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from negev_image.images import IMAGENET_MEAN, IMAGENET_STD, MAX_PIXELS, open_image

__all__ = ["crop_box", "model_view"]

Box = tuple[int, int, int, int]  # top, left, height, width


def crop_box(
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Box:
    """A random crop of an image of ``height`` x ``width``: its area a share in ``scale`` of the
    image's, its aspect ratio (w / h) log-uniform in ``ratio``; after 10 failed draws, the
    largest centred crop of a ratio in ``ratio``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _open(
    path: Path, size: int, generator: torch.Generator | None, scale, max_pixels: int
) -> tuple[Tensor, Box]:
    """Decode the file at ``path`` (JPEGs at the smallest DCT scale that keeps the crop at least
    ``size`` px a side; none over ``max_pixels``) and return (3, H, W) uint8 and the crop in its
    pixels."""
    try:
        with open_image(path, max_pixels) as image:
            width, height = image.size
            box = (0, 0, height, width)
            if generator is not None:
                box = crop_box(height, width, generator, scale)
            # draft: a JPEG is decoded at 1/2, 1/4 or 1/8 scale where that still leaves the
            # crop at least ``size`` pixels a side (no effect on other formats)
            need = (max(1, width * size // box[3]), max(1, height * size // box[2]))
            image.draft("RGB", need)
            factor = image.size[0] / width
            rgb = image.convert("RGB")  # decodes every pixel: a truncated file fails here
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)
    if factor != 1:  # the crop in the pixels of the reduced image
        top, left, h, w = box
        height, width = pixels.shape[1:]
        h, w = min(height, max(1, round(h * factor))), min(width, max(1, round(w * factor)))
        box = (min(int(top * factor), height - h), min(int(left * factor), width - w), h, w)
    return pixels, box


def model_view(
    source: Tensor | str | Path,
    size: int,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.5, 1.0),
    flip: bool | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Tensor:
    """The model input of an image: (3, size, size) float32, ImageNet-normalised.

    Args:
        source: a (3, H, W) uint8 tensor or the path of an image file.
        generator: draws a random resized crop (area share in ``scale``) and, when ``flip`` is
            None, a horizontal flip with probability 1/2 (training); None: the whole image.
        flip: flip horizontally (True), never (False), or at random (None, with a generator).
        max_pixels: the most pixels of an image file (:func:`negev_image.images.open_image`).

    Raises:
        ValueError: naming the file when it cannot be read.
    """
    if isinstance(source, Tensor):
        pixels = source
        box = (0, 0, pixels.shape[1], pixels.shape[2])
        if generator is not None:
            box = crop_box(pixels.shape[1], pixels.shape[2], generator, scale)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{path}: no such image file")
        pixels, box = _open(path, size, generator, scale, max_pixels)
    top, left, h, w = box
    x = pixels[:, top : top + h, left : left + w].float().div_(255).unsqueeze(0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    if flip is None:
        flip = generator is not None and bool(torch.rand(1, generator=generator) < 0.5)
    if flip:
        x = x.flip(-1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std)[0]
