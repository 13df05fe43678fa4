"""The built-in demo: slide-like bags whose label is "tumour AND NOT artefact".

Each bag is a slide of n tiles (log-uniform in ``sizes``, 500-20,000 by default) on a square grid
(``coords``). Tiles are drawn from feature clusters: ``normal`` and ``stroma`` tissue everywhere,
a round ``tumour`` region in some slides, a streak of ``artefact`` (a fold, pen ink) in others;
each slide also has its own stain shift (a random offset of all its tiles), as real scanners do.
A slide is positive when it has tumour and no artefact (artefact makes it unreadable): 40% of
the slides, and 20% have both, so max pooling, which sees only the tumour, fails on them.
Tumour and artefact cover 0.5-4% of a slide's tiles. The tile kinds are kept in
``truth["kinds"]`` for evaluation only (instance AUPRC); training sees the slide label.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from negev.plugins import DataSplits, Example
from negev_bags.bags import Bag

__all__ = ["KINDS", "make_slides", "slide_demo"]

KINDS = ("normal", "stroma", "tumour", "artefact")
NORMAL, STROMA, TUMOUR, ARTEFACT = range(4)
# (has tumour, has artefact) and their shares: positive = tumour and no artefact
STORIES = (((True, False), 0.4), ((True, True), 0.2), ((False, True), 0.2), ((False, False), 0.2))


def _centres(dim: int) -> np.ndarray:
    """Fixed cluster centres (the same for every seed: the same "tissue" in every demo)."""
    rng = np.random.default_rng(1234)
    return rng.normal(0.0, 1.0, size=(len(KINDS), dim))


def make_slides(
    n_bags: int,
    seed: int = 0,
    dim: int = 32,
    sizes: tuple[int, int] = (500, 20_000),
    noise: float = 1.0,
    prefix: str = "slide",
) -> list[Example]:
    """``n_bags`` demo slides (see the module doc); label (0,) = positive, () = negative."""
    rng = np.random.default_rng(seed)
    centres = _centres(dim)
    stories = [s for s, _ in STORIES]
    shares = [p for _, p in STORIES]
    examples = []
    for index in range(n_bags):
        n = int(round(math.exp(rng.uniform(math.log(sizes[0]), math.log(sizes[1])))))
        side = math.ceil(math.sqrt(n))
        cells = rng.permutation(side * side)[:n]
        xy = np.stack([cells % side, cells // side], axis=1).astype(np.float64)
        kinds = np.where(rng.random(n) < 0.3, STROMA, NORMAL)
        tumour, artefact = stories[rng.choice(len(stories), p=shares)]
        if tumour:  # a disc around a random tile
            share = rng.uniform(0.005, 0.04)
            centre = xy[rng.integers(n)]
            near = np.argsort(((xy - centre) ** 2).sum(1))[: max(1, int(share * n))]
            kinds[near] = TUMOUR
        if artefact:  # a streak: the tiles closest to a random line
            share = rng.uniform(0.005, 0.04)
            angle = rng.uniform(0, math.pi)
            normal = np.array([math.cos(angle), math.sin(angle)])
            offset = float(normal @ xy[rng.integers(n)])
            streak = np.argsort(np.abs(xy @ normal - offset))[: max(1, int(share * n))]
            kinds[streak] = ARTEFACT
        stain = rng.normal(0.0, 0.5, size=dim)
        features = centres[kinds] + stain + rng.normal(0.0, noise, size=(n, dim))
        bag = Bag(
            torch.as_tensor(features, dtype=torch.float32),
            torch.as_tensor(xy, dtype=torch.float32),
            size=n,
        )
        label = (0,) if tumour and not artefact else ()
        truth = {"kinds": torch.as_tensor(kinds, dtype=torch.int8), "has_coords": True}
        examples.append(Example(f"{prefix}{index:04d}", bag, label, truth))
    return examples


def slide_demo(
    sizes: tuple[int, int, int] = (200, 60, 120),
    seed: int = 0,
    dim: int = 32,
    instances: tuple[int, int] = (500, 20_000),
) -> DataSplits:
    """Train / val / test demo slides (independent draws), one class ``tumour_not_artefact``."""
    parts = [
        make_slides(count, seed * 3 + i, dim, instances, prefix=f"{split}_slide")
        for i, (count, split) in enumerate(zip(sizes, ("train", "val", "test"), strict=True))
    ]
    return DataSplits(*parts, ["tumour_not_artefact"], True, builtin=True)
