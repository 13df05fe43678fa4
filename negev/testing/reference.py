"""Reference pooling implementations (slow, obvious, independent of :mod:`negev.nn`)."""

from __future__ import annotations

import itertools
import math

import numpy as np
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


def _valid_values(scores: Tensor, mask: Tensor | None):
    """Yield (b, c, list of the valid region scores of sample b, class c as Python floats)."""
    batch, classes = scores.shape[:2]
    flat = scores.detach().reshape(batch, classes, -1).double().cpu()
    for b in range(batch):
        keep = [True] * flat.shape[2] if mask is None else mask[b].reshape(-1).tolist()
        for c in range(classes):
            yield b, c, [v for v, ok in zip(flat[b, c].tolist(), keep, strict=True) if ok]


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
    out = torch.zeros(scores.shape[:2], dtype=torch.float64)
    for b, c, values in _valid_values(scores, mask):
        n = len(values)

        def count(k: float | int, n: int = n) -> int:
            return max(1, round(k * n)) if 0 < k < 1 else min(int(k), n)

        values = sorted(values, reverse=True)
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
    out = torch.zeros(scores.shape[:2], dtype=torch.float64)
    for b, c, values in _valid_values(scores, mask):

        def soft(beta: float, values: list[float] = values) -> float:
            return math.log(math.fsum(math.exp(beta * v) for v in values) / len(values)) / beta

        out[b, c] = soft(beta_pos) + (alpha * soft(beta_neg) if alpha != 0 else 0.0)
    return out


def loop_ap_svm(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yue et al.'s greedy loss-augmented inference, column by column and negative by negative.

    The straightforward NumPy form (loops, as in the original authors' Python code): for each
    negative j, the gain of every insertion point i is a reversed cumulative sum of
    ``g_jk = k/((j+k)(j+k-1))/P - 2(p_k - n_j)/(PQ)``; j goes where it is largest.

    Args:
        scores, targets: (N, C) arrays; targets in {0, 1}.

    Returns:
        loss (C,) (NaN for a column without positive or negative) and gradient (N, C).
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets).astype(bool)
    n, c = scores.shape
    loss = np.full(c, np.nan)
    grad = np.zeros((n, c))
    for col in range(c):
        pos_idx = np.flatnonzero(targets[:, col])
        neg_idx = np.flatnonzero(~targets[:, col])
        P, Q = len(pos_idx), len(neg_idx)  # noqa: N806
        if P == 0 or Q == 0:
            continue
        pos_idx = pos_idx[np.argsort(-scores[pos_idx, col], kind="stable")]
        neg_idx = neg_idx[np.argsort(-scores[neg_idx, col], kind="stable")]
        p = scores[pos_idx, col]
        k = np.arange(1, P + 1)
        total = 0.0
        above = np.zeros(P)
        for j in range(1, Q + 1):
            n_j = scores[neg_idx[j - 1], col]
            g = k / ((j + k) * (j + k - 1)) / P - 2 * (p - n_j) / (P * Q)
            # gain[i] = sum_{k > i} g_k for i = 0..P (gain[P] = 0)
            gain = np.append(np.cumsum(g[::-1])[::-1], 0.0)
            best = int(np.flatnonzero(gain == gain.max())[-1])
            total += gain[best]
            above[best:] += 1
            grad[neg_idx[j - 1], col] = 2 * (P - best) / (P * Q)
        grad[pos_idx, col] = -2 * above / (P * Q)
        loss[col] = total
    return loss, grad


def brute_force_ap_svm_loss(scores: np.ndarray, targets: np.ndarray) -> float:
    """``max_y [1 - AP(y) + s(y)] - s(y*)`` by enumerating every ranking of N <= 8 items.

    Args:
        scores, targets: (N,) arrays with at least one positive and one negative.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets).astype(bool)
    n = len(scores)
    P, Q = int(targets.sum()), int((~targets).sum())  # noqa: N806
    perms = np.array(list(itertools.permutations(range(n))))  # (n!, n) items in rank order
    rank = np.empty_like(perms)
    rank[np.arange(len(perms))[:, None], perms] = np.arange(n)  # rank[r, item]
    pos, neg = np.flatnonzero(targets), np.flatnonzero(~targets)
    # y_ij = +1 when positive i is ranked above negative j
    y = np.where(rank[:, pos][:, :, None] < rank[:, neg][:, None, :], 1.0, -1.0)
    diff = scores[pos][:, None] - scores[neg][None, :]
    s_y = (y * diff).sum(axis=(1, 2)) / (P * Q)
    is_pos = targets[perms]  # (n!, n) label at each rank
    hits = np.cumsum(is_pos, axis=1)
    ap = (is_pos * hits / np.arange(1, n + 1)).sum(axis=1) / P
    return float(np.max(1 - ap + s_y) - diff.sum() / (P * Q))
