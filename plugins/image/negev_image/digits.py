"""The built-in demo: cluttered canvases of scikit-learn's handwritten digits (no download).

Each canvas holds 1-3 small digits at random places and scales, among fragments of other digits
(halves and corners that look like strokes of real digits), random strokes, smooth background
clutter, pixel noise and partial occlusions. The image-level label is the set of digit classes;
the boxes and the pixel masks of the digits are kept as ground truth for evaluation only.

The canvases of the train split are drawn from one part of scikit-learn's 1,797 digits and those
of val/test from the other part, so the test measures recognition of unseen handwriting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits

from negev.plugins import DataSplits, Example

__all__ = ["CLASSES", "DigitCanvasConfig", "digit_canvas", "digits_demo"]

CLASSES = [str(d) for d in range(10)]


@dataclass(frozen=True)
class DigitCanvasConfig:
    """How the canvases are drawn.

    Attributes:
        size: canvas side in pixels. scale: (min, max) digit side in pixels. max_digits: 1 to
        max_digits digits per canvas. fragments: (min, max) digit fragments per canvas.
        strokes: (min, max) random strokes. occlusion: probability that a digit is partly hidden.
        noise: standard deviation of the pixel noise.
    """

    size: int = 64
    scale: tuple[int, int] = (11, 18)
    max_digits: int = 3
    fragments: tuple[int, int] = (3, 6)
    strokes: tuple[int, int] = (1, 3)
    occlusion: float = 0.3
    noise: float = 0.06


def _sprite(digit: np.ndarray, side_h: int, side_w: int) -> np.ndarray:
    """An (h, w) block of an 8x8 digit (values 0..16) resized to (side_h, side_w) in [0, 1]."""
    image = Image.fromarray((digit / 16 * 255).astype(np.uint8))
    return np.asarray(image.resize((side_w, side_h), Image.BILINEAR), dtype=np.float32) / 255


def _overlap(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> int:
    """Pixels of ``box`` (x0, y0, x1, y1, exclusive ends) covered by ``boxes``."""
    total = 0
    for x0, y0, x1, y1 in boxes:
        w = min(box[2], x1) - max(box[0], x0)
        h = min(box[3], y1) - max(box[1], y0)
        total += max(w, 0) * max(h, 0)
    return total


def digit_canvas(
    rng: np.random.Generator, images: np.ndarray, targets: np.ndarray, config: DigitCanvasConfig
) -> tuple[np.ndarray, tuple[int, ...], list[tuple[int, int, int, int, int]], np.ndarray]:
    """Draw one canvas.

    Args:
        images: (K, 8, 8) source digits (0..16). targets: (K,) their classes.

    Returns:
        (image (S, S) float32 in [0, 1], labels (sorted classes), boxes [(class, x0, y0, x1, y1)]
        with inclusive pixel ends, mask (S, S) uint8: 0 background, class + 1 on digit pixels).
    """
    size = config.size
    canvas = gaussian_filter(rng.normal(size=(size, size)), sigma=3.0)
    canvas = 0.25 * (canvas - canvas.min()) / (np.ptp(canvas) + 1e-9)
    mask = np.zeros((size, size), dtype=np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[tuple[int, int, int, int, int]] = []

    for _ in range(int(rng.integers(1, config.max_digits + 1))):
        k = int(rng.integers(len(images)))
        side = int(rng.integers(config.scale[0], config.scale[1] + 1))
        for _attempt in range(50):
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            box = (x - 1, y - 1, x + side + 1, y + side + 1)
            if _overlap(box, placed) == 0:
                break
        else:
            continue
        sprite = _sprite(images[k], side, side)
        region = canvas[y : y + side, x : x + side]
        np.maximum(region, sprite, out=region)
        on = sprite > 0.35
        ys, xs = np.nonzero(on)
        mask[y : y + side, x : x + side][on] = targets[k] + 1
        placed.append((x, y, x + side, y + side))
        box = (x + xs.min(), y + ys.min(), x + xs.max(), y + ys.max())
        boxes.append((int(targets[k]), *(int(v) for v in box)))

    for _ in range(int(rng.integers(config.fragments[0], config.fragments[1] + 1))):
        digit = images[int(rng.integers(len(images)))]
        rows, cols = (int(v) for v in rng.integers(3, 6, size=2))  # a 3..5 x 3..5 block
        r0, c0 = int(rng.integers(0, 9 - rows)), int(rng.integers(0, 9 - cols))
        side = int(rng.integers(config.scale[0], config.scale[1] + 1))
        h, w = max(2, round(rows * side / 8)), max(2, round(cols * side / 8))
        for _attempt in range(20):
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            if _overlap((x, y, x + w, y + h), placed) <= 0.15 * w * h:
                break
        region = canvas[y : y + h, x : x + w]
        np.maximum(region, _sprite(digit[r0 : r0 + rows, c0 : c0 + cols], h, w), out=region)

    for _ in range(int(rng.integers(config.strokes[0], config.strokes[1] + 1))):
        (x0, y0), (x1, y1) = rng.integers(0, size, size=(2, 2))
        steps = int(max(abs(x1 - x0), abs(y1 - y0), 1))
        xs = np.linspace(x0, x1, steps + 1).round().astype(int)
        ys = np.linspace(y0, y1, steps + 1).round().astype(int)
        canvas[ys, xs] = np.maximum(canvas[ys, xs], rng.uniform(0.4, 0.8))

    for x0, y0, x1, y1 in placed:
        if rng.random() >= config.occlusion:
            continue
        side = x1 - x0
        band = int(rng.integers(max(2, side // 4), max(3, side // 3) + 1))
        where = int(rng.integers(4))
        cover = [slice(y0, y1), slice(x0, x1)]
        axis, start = (0, y0) if where < 2 else (1, x0)
        end = y1 if axis == 0 else x1
        cover[axis] = slice(start, start + band) if where % 2 == 0 else slice(end - band, end)
        canvas[tuple(cover)] = rng.uniform(0.0, 0.15)
        mask[tuple(cover)] = 0

    canvas = np.clip(canvas + rng.normal(scale=config.noise, size=canvas.shape), 0, 1)
    labels = tuple(sorted({b[0] for b in boxes}))
    return canvas.astype(np.float32), labels, boxes, mask


def digits_demo(
    sizes: tuple[int, int, int] = (2000, 300, 600),
    config: DigitCanvasConfig | None = None,
    seed: int = 0,
) -> DataSplits:
    """The demo splits (train, val, test sizes), deterministic for a given seed.

    Every example holds a (3, S, S) uint8 image and ``truth`` = {"boxes", "mask", "size"}.
    """
    config = config or DigitCanvasConfig()
    digits = load_digits()
    order = np.random.default_rng(1234).permutation(len(digits.target))
    cut = int(0.6 * len(order))
    sources = {"train": order[:cut], "val": order[cut:], "test": order[cut:]}
    splits = {}
    for offset, (split, count) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        rng = np.random.default_rng([seed, offset])
        chosen = sources[split]
        images, targets = digits.images[chosen], digits.target[chosen]
        examples = []
        for i in range(count):
            canvas, labels, boxes, mask = digit_canvas(rng, images, targets, config)
            pixels = torch.from_numpy((canvas * 255).round().astype(np.uint8))
            examples.append(
                Example(
                    f"digits-{split}-{i:05d}",
                    pixels.unsqueeze(0).expand(3, -1, -1).contiguous(),
                    labels,
                    truth={"boxes": boxes, "mask": mask, "size": (config.size, config.size)},
                )
            )
        splits[split] = examples
    return DataSplits(
        splits["train"], splits["val"], splits["test"], list(CLASSES), True, builtin=True
    )
