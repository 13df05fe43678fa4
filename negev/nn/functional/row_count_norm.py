"""The L2 norm of an item's weighted row counts: a TF-IDF vector's length, from region rows."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["row_count_norm"]


def row_count_norm(rows: Tensor, mask: Tensor | None, weights: Tensor) -> Tensor:
    """``||x_b||_2`` with ``x_b[i] = n_b[i] * weights[i]``, ``n_b[i]`` the number of valid regions
    of item ``b`` whose row is ``i``.

    For n-gram regions and ``weights`` the inverse document frequencies this is the norm a TF-IDF
    vectoriser divides by (scikit-learn's ``norm="l2"``); a row of weight 0 (outside the
    vocabulary) does not count. Computed without the (B, F) count matrix: each item's rows are
    sorted and equal rows counted as runs, O(B R log R).

    Args:
        rows: (B, *regions) int64 in ``[0, F)``. mask: (B, *regions) bool or None (all valid).
        weights: (F,) float.

    Returns:
        (B,) in the dtype and on the device of ``weights`` (computed in at least float32); 0 for
        an item without valid region.
    """
    dtype = torch.promote_types(weights.dtype, torch.float32)  # counts and squares overflow fp16
    key = rows.flatten(1)
    if mask is not None:
        key = torch.where(mask.flatten(1), key, torch.full_like(key, -1))
    key = key.sort(dim=1).values
    if key.shape[1] == 0:
        return weights.new_zeros(key.shape[0])
    starts = torch.ones_like(key, dtype=torch.bool)
    starts[:, 1:] = key[:, 1:] != key[:, :-1]
    run = starts.cumsum(1) - 1  # (B, R) the run (distinct row) each sorted region belongs to
    ones = torch.ones(key.shape, dtype=dtype, device=key.device)
    counts = torch.zeros_like(ones).scatter_add_(1, run, ones)
    # each run's row (-1: padding, or no run there); amax, as a run's regions write one slot
    row = torch.full_like(key, -1).scatter_reduce(1, run, key, "amax")
    weight = torch.where(row >= 0, weights[row.clamp_min(0)].to(dtype), 0.0)
    return (counts * weight).pow(2).sum(1).sqrt().to(weights.dtype)
