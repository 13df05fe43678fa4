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

g_jk does not increase with j, so i*_j does not decrease with j: a multilevel search over j
(:mod:`negev.nn.functional._ap_search`, a dense evaluation of G for a few j, then blocks of j
between them within their bounds) finds every i*_j for all columns in a fixed number of batched
tensor operations, chosen by size. On a GPU with Triton the whole inference of float32 / 16-bit
scores is a few kernels (:mod:`negev.nn.functional._ap_triton`: int64 keys, one sort, the same
search in two or three levels with G in registers, a finishing kernel); float64 scores take the
torch inference with those search kernels. The gradient is
``Psi(y~) - Psi(y*)``: positive k gets ``-2 a_k / (P Q)``, a_k the number of negatives placed
above it, negative j gets ``+2 (P - i*_j) / (P Q)``; the loss of a column, ``sum_j F_j(i*_j)``,
is computed as ``1 - AP(y~) + <Psi(y~) - Psi(y*), s>`` (exactly 0 when no negative moves up).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from negev.nn.functional import _ap_search, _ap_triton
from negev.nn.functional._checks import score_columns

__all__ = ["ap_svm_loss", "ap_svm_inference"]

_REDUCTIONS = ("mean", "sum", "none")
_SIGN = -(2**31)  # int32 sign bit


def ap_svm_loss(
    scores: Tensor, targets: Tensor, reduction: str = "mean", *, validate_args: bool = True
) -> Tensor:
    """Structural SVM upper bound of ``1 - AP`` with exact loss-augmented inference.

    Host synchronisation: the torch search is sized by the number of positives of each column,
    which it reads on the host (one copy). The fused Triton inference (a GPU, float32 / 16-bit
    scores) is sized for any counts instead, so with ``validate_args=False`` it reads nothing on
    the host: a call only queues kernels.

    Args:
        scores: (N,) or (N, C) float, one column per class (or ranking task).
        targets: same shape, values in {0, 1} (bool, int or float); 1 marks a positive.
        reduction: ``"mean"`` over the columns that have both a positive and a negative,
            ``"sum"`` over them, or ``"none"``: (C,) (a 0-dim tensor for (N,) input) with NaN for a
            column without positive or without negative (no ranking to learn there).
        validate_args: check the values (targets in {0, 1}, finite scores; two more host reads);
            False checks the shapes only (a target other than 1 counts as a negative, and
            non-finite scores give a meaningless loss).

    Returns:
        The loss, dtype and device of ``scores``; differentiable w.r.t. ``scores`` with gradient
        ``Psi(y~) - Psi(y*)`` (zero for the columns without loss). With ``"mean"``/``"sum"`` and no
        usable column, a zero loss (with a warning, except on the sync-free path, where seeing it
        would take a host read).

    Raises:
        ValueError: shapes differ, targets outside {0, 1}, non-finite scores, unknown reduction.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    squeeze = scores.dim() == 1
    matrix, labels = score_columns(scores, targets, finite=True, validate_args=validate_args)
    if not validate_args and _ap_triton.supports_fused(matrix):
        return _sync_free_loss(matrix, labels, reduction, squeeze)
    counts = labels.sum(0).tolist()  # positives per column: the sizes of the search, on the host
    if reduction == "none":
        per_column = _APSVMFunction.apply(matrix, labels, counts, None)
        return per_column[0] if squeeze else per_column
    usable = sum(0 < p < matrix.shape[0] for p in counts)
    if usable == 0:
        warnings.warn(
            "ap_svm_loss: no column has both a positive and a negative; the loss is 0",
            stacklevel=2,
        )
        return (scores * 0).sum()
    # reduced inside the function: one autograd node, a backward of one product
    return _APSVMFunction.apply(matrix, labels, counts, 1 / usable if reduction == "mean" else 1.0)


def _sync_free_loss(matrix: Tensor, labels: Tensor, reduction: str, squeeze: bool) -> Tensor:
    """:func:`ap_svm_loss` on the fused path with the counts and the mean's divisor kept on the
    device (a zero loss, silently, when no column has both a positive and a negative)."""
    counts = labels.sum(0)  # (C,) int64 positives per column, never read on the host
    if reduction == "none":
        per_column = _APSVMFunction.apply(matrix, labels, counts, None)
        return per_column[0] if squeeze else per_column
    try:
        return _FusedAPSVMFunction.apply(matrix, labels, counts, reduction == "mean")
    except Exception as error:  # a failed compilation: the torch path from now on
        _ap_triton.disable(error)
    return ap_svm_loss(matrix, labels, reduction, validate_args=False)  # a scalar either way


def ap_svm_inference(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Loss-augmented inference only: per-column loss and its gradient w.r.t. the scores.

    Args:
        scores: (N, C) float, finite. targets: (N, C) bool.

    Returns:
        loss (C,) float64 (NaN where a column lacks a positive or a negative) and
        gradient (N, C) float64 (``d loss_c / d scores[:, c]``; zero for those columns).
    """
    return _inference(scores, targets, targets.sum(0).tolist())


def _inference(
    scores: Tensor, targets: Tensor, counts: list[int] | Tensor
) -> tuple[Tensor, Tensor]:
    """:func:`ap_svm_inference` given the number of positives of each column: on the host, or
    (C,) int64 on the device where :func:`_ap_triton.supports_fused` holds (the fused inference
    is then sized for any counts, and the counts are read only if it fails)."""
    device = scores.device
    n, c = scores.shape
    if isinstance(counts, Tensor):
        bound = _ap_triton.count_bound(n)
        try:
            return _ap_triton.inference(scores.detach(), targets, counts, bound, bound)
        except Exception as error:  # a failed compilation: the torch path from now on
            _ap_triton.disable(error)
        counts = counts.tolist()
    usable = [0 < p < n for p in counts]
    if not any(usable):
        return (
            torch.full((c,), math.nan, dtype=torch.float64, device=device),
            torch.zeros(n, c, dtype=torch.float64, device=device),
        )
    p_max = max(p for p, u in zip(counts, usable, strict=True) if u)
    q_max = n - min(p for p, u in zip(counts, usable, strict=True) if u)
    if _ap_triton.supports_fused(scores):  # a GPU: keys, one sort, a few kernels
        try:
            return _ap_triton.inference(scores.detach(), targets, counts, p_max, q_max)
        except Exception as error:  # a failed compilation: the torch path from now on
            _ap_triton.disable(error)

    order = _positives_first(scores.detach(), targets)  # (C, N) original row of each slot
    ordered = scores.detach().t().gather(1, order).double()
    # per column, from the host in one copy each: 2/Q, 2/(PQ) and 1/P (0 where unusable), the
    # loss offset 1 (NaN where unusable); P (at most p_max: only unusable columns are cut) and Q
    floats = [
        (
            2 / max(n - p, 1),
            2 / (p * (n - p)) if u else 0.0,
            1 / p if u else 0.0,
            1.0 if u else math.nan,
        )
        for p, u in zip(counts, usable, strict=True)
    ]
    ints = [(min(p, p_max), n - p) for p in counts]
    two_over_q, scale, inv_p, offset = (
        torch.tensor(floats, dtype=torch.float64)
        .to(device, non_blocking=True)
        .unsqueeze(2)
        .unbind(1)
    )  # each (C, 1)
    pos, negatives = torch.tensor(ints).to(device, non_blocking=True).unsqueeze(2).unbind(1)

    if _ap_triton.supports(ordered):  # two kernels whatever the sizes
        strides = None
    else:
        strides = _ap_search.strides_for(_ap_search.choose_levels(p_max, q_max, c, device), q_max)
    best = _ap_search.best_insertions(ordered, two_over_q, pos, negatives, p_max, q_max, strides)

    slots = _ap_search.rows(c, n, device)  # (C, N) slot numbers 0..N-1
    rank = _ap_search.rows(c, n, device, torch.float64, start=1)  # slot + 1
    is_pos_slot = slots < pos
    # best[c] (0, i*_1, ..., i*_Q, P, ...) does not decrease: 1 + a_k, a_k the negatives placed
    # above positive k (slot k-1), is the number of its entries <= k-1 (j > Q holds P > k-1)
    above_plus_1 = _ap_search.count_at_most(best, n)
    # Psi(y~) - Psi(y*) in sorted slots: positive k gets -2 a_k/(PQ), negative j (slot P+j-1)
    # gets +2 (P - i*_j)/(PQ)
    j = (_ap_search.rows(c, n, device, start=1) - pos).clamp_(0, best.shape[1] - 1)  # slot - P + 1
    below = pos - best.gather(1, j)
    grad_sorted = torch.where(is_pos_slot, 1 - above_plus_1, below) * scale
    # loss = 1 - AP(y~) + s(y~) - s(y*), the score part being <Psi(y~) - Psi(y*), scores>, and
    # AP(y~) = 1/P sum_k k / (k + a_k); with no negative moved up every term is exactly 0.
    precision = torch.where(is_pos_slot, rank / (slots + above_plus_1), 0.0)
    loss = (grad_sorted * ordered).addcmul_(precision, inv_p, value=-1).sum(1).add_(offset[:, 0])
    grad = torch.zeros(c, n, dtype=torch.float64, device=device).scatter_(1, order, grad_sorted)
    return loss, grad.t()


def _positives_first(scores: Tensor, targets: Tensor) -> Tensor:
    """Each column's rows as slots: its positives by decreasing score, then its negatives.

    Args:
        scores: (N, C) float, finite. targets: (N, C) bool.

    Returns:
        (C, N) int64 row indices; equal scores keep their row order (as a stable sort does).
    """
    if scores.dtype == torch.float64:
        by_score = scores.t().sort(dim=1, descending=True, stable=True).indices
        group = targets.t().gather(1, by_score).logical_not_().sort(dim=1, stable=True).indices
        return by_score.gather(1, group)
    # One sort of an exact int64 key: the label above the float32 bits, mapped to integers of
    # the same order and negated (+ 0.0 turns -0.0 into 0.0, which compares equal to it).
    bits = (scores.float() + 0.0).view(torch.int32).t()
    descending = torch.where(bits < 0, bits ^ _SIGN, bits.bitwise_not()).long()
    key = torch.where(targets.t(), descending, descending + 2**32)
    return key.sort(dim=1, stable=True).indices


class _APSVMFunction(torch.autograd.Function):
    """AP-SVM loss of (N, C) scores: per column (C,) with ``weight=None``, else
    ``weight * sum`` over the usable columns (a scalar); backward ``grad_out * dloss/dscores``."""

    @staticmethod
    def forward(
        ctx,
        scores: Tensor,
        targets: Tensor,
        counts: list[int] | Tensor,
        weight: float | None,
    ) -> Tensor:
        loss, grad = _inference(scores, targets, counts)
        if weight is None:
            ctx.save_for_backward(grad.to(scores.dtype))
            return loss.to(scores.dtype)
        ctx.save_for_backward(grad.mul_(weight).to(scores.dtype))
        return loss.nansum().mul_(weight).to(scores.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None, None, None]:
        (grad,) = ctx.saved_tensors
        if grad_out.dim() == 0:
            return grad * grad_out, None, None, None
        # columns without loss have zero gradient; NaN upstream grads there must not leak
        return grad * grad_out.nan_to_num(nan=0.0), None, None, None


class _FusedAPSVMFunction(torch.autograd.Function):
    """The reduced loss on the fused path, sized for any counts and free of host reads: the
    gradient written in the scores' dtype by the finishing kernel, the sum over the usable columns
    and the mean's weight by one more (:func:`_ap_triton.total`), scaled in the backward."""

    @staticmethod
    def forward(ctx, scores: Tensor, targets: Tensor, counts: Tensor, mean: bool) -> Tensor:
        n = scores.shape[0]
        bound = _ap_triton.count_bound(n)
        parts, grad = _ap_triton.inference_parts(
            scores.detach(), targets, counts, bound, bound, scores.dtype
        )
        loss_and_weight = _ap_triton.total(parts, counts, n, mean, scores.dtype)
        ctx.save_for_backward(grad, loss_and_weight)
        return loss_and_weight[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None, None, None]:
        grad, loss_and_weight = ctx.saved_tensors
        return grad * (grad_out * loss_and_weight[1]), None, None, None
