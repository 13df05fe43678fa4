"""Structural SVM loss for average precision (Yue, Finley, Radlinski, Joachims, SIGIR 2007).

For one column (class) with positives P and negatives Q, a ranking y has ``y_ij = +1`` when
positive i is ranked above negative j, else -1, and scores
``s(y) = 1/(|P||Q|) sum_ij y_ij (s_i - s_j)``. The ground truth y* ranks every positive first.
The loss is ``max_y [1 - AP(y) + s(y)] - s(y*) >= 0``.

Loss-augmented inference is exact: positives and negatives are sorted by score (Mohapatra, Jawahar,
Kumar, NIPS 2014), then negative j (j-th highest, 1-based) goes just below the first i*_j
positives, ``i*_j = argmax_i F_j(i)`` with ``F_j(i) = sum_{k>i} g_jk`` and
``g_jk = k / ((j+k)(j+k-1)) / P - 2 (p_k - n_j) / (P Q)`` (Yue's greedy). With harmonic numbers H
and prefix sums S of the sorted positive scores,

    P F_j(i) = [H(j+P-1) + j/(j+P) - 2/Q (S_P - P n_j)] + 2/Q (S_i - i n_j) - H(j+i) - (j-1)/(j+i).

g_jk does not increase with j, so i*_j does not decrease with j: a divide and conquer over j finds
every i*_j in O((P + Q) log Q), one batched step per level for all columns. The gradient is
``Psi(y~) - Psi(y*)``: positive k gets ``-2 a_k / (P Q)``, a_k the number of negatives placed
above it, negative j gets ``+2 (P - i*_j) / (P Q)``; the loss of a column, ``sum_j F_j(i*_j)``,
is computed as ``1 - AP(y~) + <Psi(y~) - Psi(y*), s>`` (exactly 0 when no negative moves up).
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import Tensor

from negev.nn.functional._checks import score_columns

__all__ = ["ap_svm_loss", "ap_svm_inference"]

_REDUCTIONS = ("mean", "sum", "none")
_PAD_FACTOR = 3


def ap_svm_loss(scores: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Structural SVM upper bound of ``1 - AP`` with exact loss-augmented inference.

    Args:
        scores: (N,) or (N, C) float, one column per class (or ranking task).
        targets: same shape, values in {0, 1} (bool, int or float); 1 marks a positive.
        reduction: ``"mean"`` over the columns that have both a positive and a negative,
            ``"sum"`` over them, or ``"none"``: (C,) (a 0-dim tensor for (N,) input) with NaN for a
            column without positive or without negative (no ranking to learn there).

    Returns:
        The loss, dtype and device of ``scores``; differentiable w.r.t. ``scores`` with gradient
        ``Psi(y~) - Psi(y*)`` (zero for the columns without loss). With ``"mean"``/``"sum"`` and no
        usable column, a zero loss (with a warning).

    Raises:
        ValueError: shapes differ, targets outside {0, 1}, non-finite scores, unknown reduction.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    squeeze = scores.dim() == 1
    matrix, labels = score_columns(scores, targets, finite=True)
    per_column = _APSVMFunction.apply(matrix, labels)
    if reduction == "none":
        return per_column[0] if squeeze else per_column
    if bool(torch.isnan(per_column).all()):
        warnings.warn(
            "ap_svm_loss: no column has both a positive and a negative; the loss is 0",
            stacklevel=2,
        )
        return (scores * 0).sum()
    return per_column.nanmean() if reduction == "mean" else per_column.nansum()


def ap_svm_inference(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Loss-augmented inference only: per-column loss and its gradient w.r.t. the scores.

    Args:
        scores: (N, C) float, finite. targets: (N, C) bool.

    Returns:
        loss (C,) float64 (NaN where a column lacks a positive or a negative) and
        gradient (N, C) float64 (``d loss_c / d scores[:, c]``; zero for those columns).
    """
    device = scores.device
    n, c = scores.shape
    # Work column by column in rows of a (C, N) layout: sorting along contiguous memory is faster.
    raw = scores.detach().t().contiguous()
    pos = targets.t().contiguous()
    num_pos = pos.sum(1)  # (C,)
    num_neg = n - num_pos
    usable = (num_pos > 0) & (num_neg > 0)
    loss = torch.full((c,), math.nan, dtype=torch.float64, device=device)
    grad = torch.zeros(n, c, dtype=torch.float64, device=device)
    if not bool(usable.any()):
        return loss, grad

    # Sort each column by score (descending), then bring its positives first, order kept:
    # slots 0..P-1 hold the positives p_1 >= ... >= p_P, slots P..N-1 the negatives n_1 >= ... .
    by_score = raw.argsort(dim=1, descending=True)
    is_pos = pos.gather(1, by_score)
    slot = torch.where(
        is_pos,
        is_pos.cumsum(1) - 1,
        num_pos.unsqueeze(1) + (~is_pos).cumsum(1) - 1,
    )
    order = torch.empty_like(by_score).scatter_(1, slot, by_score)  # original row of each slot
    ordered = raw.double().gather(1, order)  # (C, N)

    P = num_pos.to(torch.float64).unsqueeze(1)  # noqa: N806 - the paper's names, (C, 1)
    Q = num_neg.to(torch.float64).unsqueeze(1)  # noqa: N806
    slots = torch.arange(n, device=device)
    is_pos_slot = slots < num_pos.unsqueeze(1)  # (C, N)
    # prefix sums S_i of the sorted positive scores, i = 0..N (constant past P)
    prefix = torch.zeros(c, n + 1, dtype=torch.float64, device=device)
    torch.cumsum(torch.where(is_pos_slot, ordered, 0.0), dim=1, out=prefix[:, 1:])
    harmonic = _harmonic_numbers(n + 1, device)

    best = _best_insertions(ordered, prefix, harmonic, num_pos, num_neg, usable)  # (C, Qmax)
    q_max = best.shape[1]
    # a_k, the negatives placed above positive k (slot k-1): those with i*_j <= k-1
    active = (torch.arange(q_max, device=device) < num_neg.unsqueeze(1)) & usable.unsqueeze(1)
    placed = torch.zeros(c, n + 1, dtype=torch.float64, device=device)
    placed.scatter_add_(1, torch.where(active, best, n), active.double())
    above = placed.cumsum(1)[:, :n]
    # Psi(y~) - Psi(y*) in sorted slots: positive k gets -2 a_k/(PQ), negative j (slot P+j-1)
    # gets +2 (P - i*_j)/(PQ)
    j_of_slot = (slots - num_pos.unsqueeze(1)).clamp_(0, q_max - 1)
    below = P - best.gather(1, j_of_slot).double()
    scale = torch.where(usable.unsqueeze(1), 2.0 / (P * Q), 0.0)  # (C, 1)
    grad_sorted = torch.where(is_pos_slot, -above, below).mul_(scale)
    # loss = 1 - AP(y~) + s(y~) - s(y*), the score part being <Psi(y~) - Psi(y*), scores>;
    # with no negative moved up, a_k = 0 and every term is exactly 0.
    rank = slots + 1.0
    precision = torch.where(is_pos_slot, rank / (rank + above), 0.0)
    loss = 1.0 - precision.sum(1) / P.squeeze(1) + (grad_sorted * ordered).sum(1)
    loss = torch.where(usable, loss, math.nan)
    grad.t().scatter_(1, order, grad_sorted)
    return loss, grad


@functools.lru_cache(maxsize=32)
def _level_order(depth: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The divide-and-conquer nodes j = 1..2^depth - 1, level by level.

    Level l holds j = (2m + 1) s with s = 2^(depth-1-l), between the shallower nodes j - s and
    j + s. Returns j (2^depth - 1,), s of each j, and the index of the last node of each level.
    """
    width = 2**depth
    steps = [width >> (level + 1) for level in range(depth)]
    js = torch.cat([torch.arange(step, width, 2 * step) for step in steps])
    step_of = torch.cat([torch.full((width // (2 * step),), step) for step in steps])
    level_end = torch.tensor([width // step for step in steps]) - 2
    return js.to(device), step_of.to(device), level_end.to(device)


@functools.lru_cache(maxsize=32)
def _harmonic_numbers(n: int, device: torch.device) -> Tensor:
    """(n+1,) float64 harmonic numbers H(0..n), H(0) = 0."""
    steps = torch.arange(n + 1, dtype=torch.float64)
    return torch.cat([steps[:1], (1.0 / steps[1:]).cumsum(0)]).to(device)


def _best_insertions(
    ordered: Tensor,
    prefix: Tensor,
    harmonic: Tensor,
    num_pos: Tensor,
    num_neg: Tensor,
    usable: Tensor,
) -> Tensor:
    """Largest argmax i*_j in [0, P] of ``G_j(i) = 2/Q (S_i - i n_j) - H(j+i) - (j-1)/(j+i)``.

    Divide and conquer over j, level by level: j = 1..2^D - 1 is a node of level
    ``D - 1 - log2(lowbit(j))``, between the nodes j - lowbit(j) and j + lowbit(j) of shallower
    levels (or the boundaries 0 and past Q), whose i* bound its search range. All nodes of a
    level, in every column, are searched in one batched pass over their concatenated ranges.
    Everything that does not depend on the i* found so far is laid out once, before the levels.

    Args:
        ordered: (C, N) sorted scores (positives first). prefix: (C, N+1) prefix sums of the
            positives. harmonic: (N+2,) harmonic numbers. num_pos, num_neg, usable: (C,).

    Returns:
        (C, Qmax) int64; entries past a column's Q hold its P.
    """
    device = ordered.device
    c, n = ordered.shape
    q_max = int(num_neg[usable].max())
    depth = max(1, math.ceil(math.log2(q_max + 1)))
    width = 2**depth  # best[:, j] for j = 0..width; 0 and j > Q are the boundaries 0 and P
    best = num_pos.unsqueeze(1).expand(c, width + 1).contiguous()
    best[:, 0] = 0
    best_flat = best.view(-1)

    # Every node (column, j) with j <= Q, level by level (see _level_order).
    js, step_of, level_end = _level_order(depth, device)
    alive = js.unsqueeze(1) <= num_neg.masked_fill(~usable, 0)  # (width - 1, C)
    ends = alive.sum(1).cumsum(0).index_select(0, level_end).tolist()
    counts = [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    slot, node_c = alive.nonzero(as_tuple=True)  # level-major order
    node_j, lowbit = js.index_select(0, slot), step_of.index_select(0, slot)
    at = node_c * (width + 1) + node_j
    at_lo, at_hi = at - lowbit, at + lowbit
    # per node: offsets of (i, prefix index, j + i) from i, and (j, 2/Q, 2/Q n_j, j - 1)
    offsets = torch.stack([torch.zeros_like(node_j), node_c * (n + 1), node_j], 1)
    two_over_q = (2.0 / num_neg.clamp(min=1).double()).index_select(0, node_c)
    n_j = ordered.reshape(-1).index_select(
        0, node_c * n + num_pos.index_select(0, node_c) + node_j - 1
    )
    jf = node_j.double()
    floats = torch.stack([jf, two_over_q, two_over_q * n_j, jf - 1], 1)
    prefix_flat = prefix.reshape(-1)

    start = 0
    for count in counts:
        level_nodes = slice(start, start + count)
        start += count
        lo = best_flat.index_select(0, at_lo[level_nodes])
        hi = best_flat.index_select(0, at_hi[level_nodes])
        # A node whose range is a single i needs no search (most nodes of the deep levels).
        best_flat.index_copy_(0, at[level_nodes], lo)
        (open_nodes,) = (hi > lo).nonzero(as_tuple=True)
        if open_nodes.numel() == 0:
            continue
        lo, hi = lo.index_select(0, open_nodes), hi.index_select(0, open_nodes)
        open_nodes = open_nodes + level_nodes.start
        off = offsets.index_select(0, open_nodes)  # (K, 3)
        fl = floats.index_select(0, open_nodes)  # (K, 4)
        arg = _search_ranges(lo, hi, off, fl, prefix_flat, harmonic)
        best_flat.index_copy_(0, at.index_select(0, open_nodes), arg)
    return best[:, 1 : q_max + 1]


def _search_ranges(
    lo: Tensor, hi: Tensor, off: Tensor, fl: Tensor, prefix_flat: Tensor, harmonic: Tensor
) -> Tensor:
    """Largest maximiser of G over i in [lo, hi] for each of K nodes.

    Args:
        lo, hi: (K,) int64 bounds. off: (K, 3) offsets of (i, prefix index, j + i) from i.
        fl: (K, 4) float64 (j, 2/Q, 2/Q n_j, j - 1). prefix_flat: flat prefix sums.
        harmonic: (N+2,) harmonic numbers.

    Returns:
        (K,) int64.
    """
    length = hi - lo + 1
    span, total = int(length.max()), int(length.sum())
    if span * length.numel() <= _PAD_FACTOR * total:
        # ranges padded to a (K, span) block, walked from the top (argmax returns the first,
        # so the largest maximiser); past its end a range repeats its lowest i, harmlessly.
        steps = torch.arange(span, device=lo.device)
        i = torch.maximum(hi.unsqueeze(1) - steps, lo.unsqueeze(1))  # (K, span)
        j, tq, tq_nj, j_minus_1 = fl.unsqueeze(2).unbind(1)  # each (K, 1)
        pref_at, j_plus_i = i + off[:, 1:2], i + off[:, 2:3]
    else:
        # ranges concatenated, one segment per node
        node = torch.repeat_interleave(length)  # node of each candidate (T,)
        first = length.cumsum(0).sub_(length)
        bases = off + (lo - first).unsqueeze(1)
        ranks = torch.arange(total, device=lo.device).unsqueeze(1)
        i, pref_at, j_plus_i = bases.index_select(0, node).add_(ranks).unbind(1)
        j, tq, tq_nj, j_minus_1 = fl.index_select(0, node).unbind(1)
    i_f = i.double()
    value = torch.addcmul(_take(harmonic, j_plus_i).neg_(), tq, _take(prefix_flat, pref_at))
    value.addcmul_(tq_nj, i_f, value=-1).sub_(j_minus_1.div(j + i_f))
    if i.dim() == 2:
        return i.gather(1, value.argmax(dim=1, keepdim=True)).squeeze(1)
    top = torch.segment_reduce(value, "max", lengths=length)
    hit = torch.where(value == top.index_select(0, node), i_f, -1.0)  # the largest maximiser
    return torch.segment_reduce(hit, "max", lengths=length).long()


def _take(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a 1-D table and an index of any shape (``index_select`` is the
    fastest gather on CPU)."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


class _APSVMFunction(torch.autograd.Function):
    """Per-column AP-SVM loss (C,) of (N, C) scores; backward: ``grad_c * dloss_c/dscores``."""

    @staticmethod
    def forward(ctx, scores: Tensor, targets: Tensor) -> Tensor:
        loss, grad = ap_svm_inference(scores, targets)
        ctx.save_for_backward(grad)
        ctx.dtype = scores.dtype
        return loss.to(scores.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:
        (grad,) = ctx.saved_tensors
        # columns without loss have zero gradient; NaN upstream grads there must not leak
        upstream = torch.nan_to_num(grad_out.double(), nan=0.0)
        return (grad * upstream).to(ctx.dtype), None
