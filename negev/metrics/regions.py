"""Region-level evidence metrics against ground-truth regions (spans, atoms, windows, cells).

Each item has one score per region (its class map, flattened) and a bool per region saying
whether the region is ground-truth evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from negev.metrics.average_precision import average_precision

__all__ = ["pointing_accuracy", "region_auprc"]


def region_auprc(scores: Sequence[Tensor], truth: Sequence[Tensor]) -> float:
    """Average precision of every region of every item ranked by score at once (one threshold
    for all items), against the true regions.

    Args:
        scores: per item, (R_i,) float region scores. truth: per item, (R_i,) bool.

    Returns:
        AP in [0, 1]; NaN when no region is true.
    """
    if not scores:
        return float("nan")
    values = torch.cat([s.detach().flatten().double().cpu() for s in scores])
    labels = torch.cat([t.flatten().cpu() for t in truth])
    return float(average_precision(values, labels))


def pointing_accuracy(scores: Sequence[Tensor], truth: Sequence[Tensor]) -> float:
    """Share of the items (with at least one true region) whose highest-scoring region is a true
    region (the pointing game without tolerance); NaN when no item has a true region.

    Args:
        scores: per item, (R_i,) float region scores. truth: per item, (R_i,) bool.
    """
    hits = [bool(t.flatten()[s.flatten().argmax()]) for s, t in zip(scores, truth, strict=True)
            if bool(t.any())]  # fmt: skip
    return sum(hits) / len(hits) if hits else float("nan")
