"""Instance evidence of a bag: metrics against instance ground truth, CSV and PNG for people."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from sklearn.metrics import average_precision_score
from torch import Tensor

from negev.plugins.render import evidence_rgb

__all__ = ["instance_auprc", "write_instance_csv", "write_scatter"]


def instance_auprc(
    maps: list[Tensor], kinds: list[Tensor], positive: int, negative: int
) -> dict[str, float]:
    """AUPRC of instance evidence pooled over bags: ``instance_auprc_pos`` ranks instances by
    map (class 0) against kind == ``positive``, ``instance_auprc_neg`` by -map against kind ==
    ``negative``. ``maps``: (N_i,) per bag; ``kinds``: (N_i,) int per bag."""
    values = torch.cat([m.float() for m in maps]).numpy()
    truth = torch.cat(kinds).numpy()
    out = {}
    for key, kind, sign in (("pos", positive, 1.0), ("neg", negative, -1.0)):
        hits = truth == kind
        if 0 < hits.sum() < len(hits):
            out[f"instance_auprc_{key}"] = float(average_precision_score(hits, sign * values))
            out[f"instance_auprc_{key}_chance"] = float(hits.mean())
    return out


def write_instance_csv(
    path: Path, maps: Tensor, classes: list[str], coords: Tensor | None, selected=None
) -> Path:
    """One row per instance: index, x, y (when known), the score of each class and, when the
    pooling has a hard selection, whether it kept the instance high (+1), low (-1), both (2:
    one map kept it high and another low, with ``pool_each_map``) or not (0)."""
    n = maps.shape[1]
    header = ["instance"] + (["x", "y"] if coords is not None else [])
    header += [f"score_{c}" for c in classes]
    if selected is not None:
        header += [f"kept_{c}" for c in classes]
    # a class name that is not valid Unicode (a lone surrogate from undecodable label bytes)
    # is written escaped, as the other plugins' files write it
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        values = maps.T.tolist()
        xy = coords.tolist() if coords is not None else None
        kept = None
        if selected is not None:
            high, low = selected
            kept = (high.int() - low.int() + 2 * (high & low).int()).T.tolist()
        for i in range(n):
            row = [i] + (xy[i] if xy is not None else [])
            row += [f"{v:.6g}" for v in values[i]]
            row += kept[i] if kept is not None else []
            writer.writerow(row)
    return path


def write_scatter(
    path: Path,
    values: Tensor,
    coords: Tensor | None,
    title: str,
    size: int = 640,
) -> Path:
    """A PNG of one class's instance evidence at the instances' coordinates (green for, red
    against, scaled by the largest absolute value); without coordinates the instances fill a
    square grid in their order."""
    n = values.numel()
    if coords is None:
        side = math.ceil(math.sqrt(n))
        index = torch.arange(n)
        coords = torch.stack([index % side, index // side], 1).float()
    xy = coords.double().numpy()
    low, high = xy.min(0), xy.max(0)
    span = float(max(high - low)) or 1.0
    cell = max(1, int(size / (span + 1)))
    width = int((high[0] - low[0]) * size / span) + cell + 1
    height = int((high[1] - low[1]) * size / span) + cell + 1
    image = Image.new("RGB", (width, height + 18), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    scale = float(values.abs().max()) or 1.0
    pixels = np.round((xy - low) * size / span).astype(int)
    for (x, y), v in zip(pixels.tolist(), (values / scale).tolist(), strict=True):
        colour = tuple(int(255 * c) for c in evidence_rgb(v))
        draw.rectangle((x, y + 18, x + cell - 1, y + 18 + cell - 1), fill=colour)
    draw.text((4, 2), title, fill=(0, 0, 0))
    image.save(path)
    return path
