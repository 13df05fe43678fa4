"""Reference pooling implementations (slow, obvious, independent of :mod:`negev.nn`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sort_wildcat_pool(scores: Tensor, kmax: float | int, kmin: float | int, alpha: float) -> Tensor:
    """The original 2017 WILDCAT approach: sort all regions, average both ends.

    Args:
        scores: (B, C, *regions), no mask. kmax, kmin: counts or fractions in (0, 1).

    Returns:
        (B, C). Differentiable through ``torch.sort``.
    """
    batch, classes = scores.shape[:2]
    flat = scores.reshape(batch, classes, -1)
    n = flat.shape[2]

    def count(k: float | int) -> int:
        return max(1, round(k * n)) if 0 < k < 1 else min(int(k), n)

    ordered, _ = torch.sort(flat, dim=2, descending=True)
    high = ordered.narrow(2, 0, count(kmax)).sum(2) / count(kmax)
    if kmin == 0 or alpha == 0:
        return high
    low = ordered.narrow(2, n - count(kmin), count(kmin)).sum(2) / count(kmin)
    return high + alpha * low


def naive_wildcat_pool(
    scores: Tensor,
    kmax: float | int,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Loop over samples and classes, sort the valid region scores as Python floats.

    Returns (B, C) float64 (no gradient).
    """
    kmin = kmax if kmin is None else kmin
    batch, classes = scores.shape[:2]
    flat = scores.detach().reshape(batch, classes, -1).double().cpu()
    valid = (
        torch.ones(batch, flat.shape[2], dtype=torch.bool)
        if mask is None
        else mask.reshape(batch, -1).cpu()
    )
    out = torch.zeros(batch, classes, dtype=torch.float64)
    for b in range(batch):
        idx = [h for h in range(flat.shape[2]) if valid[b, h]]
        n = len(idx)

        def count(k: float | int, n: int = n) -> int:
            return max(1, round(k * n)) if 0 < k < 1 else min(int(k), n)

        for c in range(classes):
            values = sorted((float(flat[b, c, h]) for h in idx), reverse=True)
            result = sum(values[: count(kmax)]) / count(kmax)
            if kmin != 0 and alpha != 0:
                result += alpha * sum(values[n - count(kmin) :]) / count(kmin)
            out[b, c] = result
    return out


def naive_lse_pool(
    scores: Tensor,
    beta_pos: float,
    beta_neg: float,
    alpha: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """The LSE formula term by term with ``math.fsum`` in float64 (moderate betas, beta != 0).

    Returns (B, C) float64.
    """
    batch, classes = scores.shape[:2]
    flat = scores.detach().reshape(batch, classes, -1).double().cpu()
    valid = (
        torch.ones(batch, flat.shape[2], dtype=torch.bool)
        if mask is None
        else mask.reshape(batch, -1).cpu()
    )
    out = torch.zeros(batch, classes, dtype=torch.float64)
    for b in range(batch):
        for c in range(classes):
            values = [float(v) for v, ok in zip(flat[b, c], valid[b], strict=True) if ok]
            n = len(values)

            def soft(beta: float, values: list[float] = values, n: int = n) -> float:
                return math.log(math.fsum(math.exp(beta * v) for v in values) / n) / beta

            out[b, c] = soft(beta_pos) + (alpha * soft(beta_neg) if alpha != 0 else 0.0)
    return out
