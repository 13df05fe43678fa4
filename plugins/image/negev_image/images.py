"""Reading images from disk and turning them into model inputs.

An image travels as a (3, H, W) uint8 tensor (built-in demo) or as the path of a file (datasets on
disk, read again at each batch so that large datasets stay on disk).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_PIXELS",
    "check_image",
    "open_image",
    "read_image",
    "to_model_input",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Most pixels of one image (plugin option ``max_pixels``): a 10,000 x 10,000 photograph. A
#: larger image is a bad item, refused from its header before anything is decoded.
MAX_PIXELS = 100_000_000


@contextlib.contextmanager
def open_image(path: Path, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """``PIL.Image.open`` with the size read from the header checked against ``max_pixels``
    before any pixel is decoded, in place of PIL's decompression-bomb warning; a header beyond
    PIL's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``) is refused as well.

    Raises:
        ValueError: naming the file, when it is not an image or has too many pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path}: too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ValueError(
                f"{path}: {width} x {height} pixels, over the limit of max_pixels={max_pixels} "
                "(a plugin option)"
            )
        yield image


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Tensor:
    """The image at ``path`` as a (3, H, W) uint8 RGB tensor.

    Raises:
        ValueError: naming the file, when it is missing, not an image, truncated/corrupt, or
            over ``max_pixels`` (:func:`open_image`).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with open_image(path, max_pixels) as image:
            rgb = image.convert("RGB")  # decodes every pixel: a truncated file fails here
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    array = np.asarray(rgb, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Decode the image at ``path`` once and return its (height, width); raises as
    :func:`read_image` does."""
    image = read_image(path, max_pixels)
    return int(image.shape[1]), int(image.shape[2])


def to_model_input(image: Tensor, size: int) -> Tensor:
    """(3, H, W) uint8 -> (3, size, size) float32, resized (bilinear, antialiased) and normalised
    with the ImageNet mean and standard deviation (what torchvision's ResNet weights expect)."""
    x = image.float().div_(255).unsqueeze(0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std)[0]
