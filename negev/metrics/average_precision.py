"""Average precision per class and its mean (the stateful metric: :mod:`negev.metrics.stateful`).

``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds n (scikit-learn's
``average_precision_score``: tied scores form one threshold), or the PASCAL VOC 2007 11-point
interpolation ``mean_{t in 0, 0.1, ..., 1} max_{R >= t} P``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from negev.nn.functional._checks import score_columns

__all__ = ["average_precision", "mean_average_precision"]

_INTERPOLATIONS = ("area", "voc07")


def average_precision(scores: Tensor, targets: Tensor, interpolation: str = "area") -> Tensor:
    """AP of each column (class).

    Args:
        scores: (N,) or (N, C) float. targets: same shape, {0, 1} (bool, int or float).
        interpolation: ``"area"`` (scikit-learn's definition, ties grouped) or ``"voc07"``
            (11-point interpolated precision of PASCAL VOC 2007).

    Returns:
        (C,) float64, or a 0-dim tensor for (N,) input; NaN for a column without positive.
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    squeeze = scores.dim() == 1
    values, labels = _as_columns(scores, targets)
    n = values.shape[0]
    order = values.argsort(dim=0, descending=True)
    ranked = values.gather(0, order)
    hits = labels.gather(0, order).double()
    tp = hits.cumsum(0)  # (N, C)
    positives = tp[-1]
    rank = torch.arange(1, n + 1, dtype=torch.float64, device=values.device).unsqueeze(1)
    # a threshold closes where the next score differs (ties form one threshold)
    last_of_tie = torch.ones_like(ranked, dtype=torch.bool)
    last_of_tie[:-1] = ranked[:-1] != ranked[1:]
    precision = tp / rank
    recall = tp / positives.clamp(min=1)
    if interpolation == "area":
        # each positive counts with the precision at the end of its tie group
        end = torch.where(last_of_tie, rank - 1, float(n)).long()
        end = end.flip(0).cummin(0).values.flip(0)  # next threshold at or after each row
        ap = (hits * precision.gather(0, end)).sum(0) / positives.clamp(min=1)
    else:
        precision = torch.where(last_of_tie, precision, 0.0)
        # max precision at recall >= t: a running max from the bottom of the ranking
        best_below = precision.flip(0).cummax(0).values.flip(0)
        levels = torch.linspace(0, 1, 11, dtype=torch.float64, device=values.device)
        reached = recall.unsqueeze(0) >= levels.view(-1, 1, 1) - 1e-12  # (11, N, C)
        at_level = torch.where(reached & last_of_tie, best_below.unsqueeze(0), 0.0)
        ap = at_level.amax(1).mean(0)
    ap = torch.where(positives > 0, ap, math.nan)
    return ap[0] if squeeze else ap


def mean_average_precision(scores: Tensor, targets: Tensor, interpolation: str = "area") -> Tensor:
    """Mean of :func:`average_precision` over the columns that have a positive (0-dim float64).

    NaN when no column has a positive.
    """
    return torch.nanmean(average_precision(scores, targets, interpolation))


def _as_columns(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(N, C) float64 scores (detached) and bool targets; NaN scores are refused."""
    matrix, labels = score_columns(scores, targets, finite=False)
    return matrix.detach().double(), labels
