"""WILDCAT / WELDON spatial pooling: the k+ highest and the k- lowest region scores.

``y_c = mean(top_kmax(z_c)) + alpha * mean(bottom_kmin(z_c))`` over the valid regions of a sample.

Special cases: max (kmax=1, alpha=0), global average (kmax=n, alpha=0), max+min (1, 1, 1),
WELDON (k, k, 1), WILDCAT (kmax, kmin, alpha with M maps per class, see
:func:`~negev.nn.functional.class_wise_pool`).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from negev.nn.functional._checks import (
    check_count,
    check_finite_number,
    count_valid,
    flatten_regions,
    raise_if_nan,
    resolve_count,
)

__all__ = ["wildcat_pool", "wildcat_selection"]


def wildcat_pool(
    scores: Tensor,
    kmax: float | int = 1,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Negative-evidence pooling of region scores into class scores.

    ``y[b, c] = mean(kmax largest z[b, c, h]) + alpha * mean(kmin smallest z[b, c, h])``, h ranging
    over the valid regions of sample b.

    Args:
        scores: (B, C, *regions) float region scores; the region dims are flattened (N regions).
        kmax: regions kept at the top: an int count, or a float in (0, 1), the fraction of each
            sample's valid regions (rounded, at least 1). A count above the number of valid regions
            keeps them all.
        kmin: regions kept at the bottom, same rules; ``None`` means ``kmin = kmax``; 0 drops the
            low term.
        alpha: weight of the low term; 0 drops it.
        mask: (B, *regions) bool, True marks a valid region; None means all are valid.

    Returns:
        (B, C) class scores, dtype and device of ``scores``. Gradients flow only into the selected
        regions (the sub-gradient of top-k).

    Raises:
        ValueError: bad k or alpha, mismatched shapes, a sample without valid region, or NaN among
            the valid scores.
    """
    check_count("kmax", kmax, allow_zero=False)
    kmin = kmax if kmin is None else kmin
    check_count("kmin", kmin, allow_zero=True)
    check_finite_number("alpha", alpha)
    flat, flat_mask = flatten_regions(scores, mask)
    batch, _, regions = flat.shape
    use_low = kmin != 0 and alpha != 0

    if flat_mask is None:
        kmax_n = _uniform_count(kmax, regions)
        kmin_n = _uniform_count(kmin, regions) if use_low else 0
        return _TopBottomMean.apply(flat, kmax_n, kmin_n, float(alpha))

    valid = count_valid(flat_mask, batch, regions, flat.device)
    high = _masked_extreme_mean(flat, flat_mask, resolve_count(kmax, valid), largest=True)
    if not use_low:
        return high
    low = _masked_extreme_mean(flat, flat_mask, resolve_count(kmin, valid), largest=False)
    return high + alpha * low


def _uniform_count(k: float | int, regions: int) -> int:
    """Number of regions for ``k`` when every sample has ``regions`` valid regions."""
    if 0 < k < 1:
        return max(1, round(k * regions))
    return min(int(k), regions)


# Below this many regions a full sort beats two top-k selections when k is large (CPU timings).
_SORT_BELOW_REGIONS = 64


def _select_ends(flat: Tensor, kmax: int, kmin: int, alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """Pick the regions of both ends of (B, C, N) along N, with their weight in the output.

    Returns values (B, C, m), their region indices (B, C, m) and weights (m,) such that
    ``out = values @ weights``: 1/kmax on the kmax largest, alpha/kmin on the kmin smallest.
    One pass for both ends where it pays: ``max``/``min`` for k = 1, one full sort for small N with
    large k, else two ``topk(sorted=False)`` selections (O(N) each instead of O(N log N)).
    """
    regions = flat.shape[2]

    def weights(n_high: int, n_mid: int, n_low: int) -> Tensor:
        return _end_weights(n_high, n_mid, n_low, kmax, kmin, alpha, flat.device, flat.dtype)

    if kmax == 1 and kmin <= 1:
        high_v, high_i = flat.max(dim=2, keepdim=True)
        if kmin == 0:
            return high_v, high_i, weights(1, 0, 0)
        low_v, low_i = flat.min(dim=2, keepdim=True)
        return torch.cat([high_v, low_v], 2), torch.cat([high_i, low_i], 2), weights(1, 0, 1)
    if regions <= _SORT_BELOW_REGIONS and kmax + kmin >= regions / 2:
        values, indices = flat.sort(dim=2, descending=True)
        # kmax + kmin > N makes the ends overlap: the middle weights then add up.
        w = weights(kmax, regions - kmax, 0) + weights(0, regions - kmin, kmin)
        return values, indices, w
    high_v, high_i = flat.topk(kmax, dim=2, largest=True, sorted=False)
    if kmin == 0:
        return high_v, high_i, weights(kmax, 0, 0)
    low_v, low_i = flat.topk(kmin, dim=2, largest=False, sorted=False)
    return torch.cat([high_v, low_v], 2), torch.cat([high_i, low_i], 2), weights(kmax, 0, kmin)


@functools.lru_cache(maxsize=256)
def _end_weights(
    n_high: int,
    n_mid: int,
    n_low: int,
    kmax: int,
    kmin: int,
    alpha: float,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """(n_high + n_mid + n_low,): 1/kmax, then zeros, then alpha/kmin (cached: built per call it
    costs several small tensor ops, a large share of the time on small inputs)."""
    weights = torch.zeros(n_high + n_mid + n_low, dtype=dtype)
    weights[:n_high] = 1.0 / kmax
    if n_low:
        weights[n_high + n_mid :] = alpha / kmin
    return weights.to(device)


class _TopBottomMean(torch.autograd.Function):
    """``mean(top kmax) + alpha * mean(bottom kmin)`` of (B, C, N) along N, every region valid.

    The backward scatters the output gradient straight into the selected regions: only their
    (B, C, m) indices are kept for it, not a sorted copy of the input.
    """

    @staticmethod
    def forward(ctx, flat: Tensor, kmax: int, kmin: int, alpha: float) -> Tensor:
        values, indices, weights = _select_ends(flat, kmax, kmin, alpha)
        out = values @ weights
        if torch.isnan(out).any():  # NaN is selected as the largest value, so it reaches `out`
            raise_if_nan(values[..., :1] if kmax == 1 else values)
        ctx.save_for_backward(indices, weights)
        ctx.shape = flat.shape
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        indices, weights = ctx.saved_tensors
        # scatter_add: a region in both ends (kmax + kmin > N) gets both weights.
        grad_in = grad.new_zeros(ctx.shape)
        # (an upstream `sum()` hands an expanded, stride-0 grad: densify it before broadcasting)
        grad_in.scatter_add_(2, indices, grad.contiguous().unsqueeze(2) * weights)
        return grad_in, None, None, None


def _masked_extreme_mean(flat: Tensor, flat_mask: Tensor, k: Tensor, *, largest: bool) -> Tensor:
    """Mean of the k[b] largest (or smallest) valid scores of each sample.

    Args:
        flat: (B, C, N) scores. flat_mask: (B, N) bool. k: (B,) int64, 1 <= k[b] <= valid[b].

    Returns:
        (B, C).
    """
    fill = float("-inf") if largest else float("inf")
    filled = flat.masked_fill(~flat_mask.unsqueeze(1), fill)
    kmax = int(k.max())
    values = torch.topk(filled, kmax, dim=2, largest=largest, sorted=True).values
    if largest:
        raise_if_nan(values)
    keep = torch.arange(kmax, device=flat.device) < k.unsqueeze(1)  # (B, kmax)
    kept = torch.where(keep.unsqueeze(1), values, values.new_zeros(()))
    return kept.sum(dim=2) / k.unsqueeze(1).to(flat.dtype)


def wildcat_selection(
    scores: Tensor,
    kmax: float | int = 1,
    kmin: float | int | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Which regions :func:`wildcat_pool` keeps: the k+ highest and the k- lowest valid ones.

    Args:
        scores: (B, C, *regions) float. kmax, kmin, mask: as in :func:`wildcat_pool`.

    Returns:
        ``(high, low)``, two (B, C, *regions) bool tensors marking the kept top and bottom regions
        (``low`` is all False when ``kmin`` is 0). Ties are broken as ``torch.topk`` breaks them.
    """
    check_count("kmax", kmax, allow_zero=False)
    kmin = kmax if kmin is None else kmin
    check_count("kmin", kmin, allow_zero=True)
    flat, flat_mask = flatten_regions(scores, mask)
    batch, _, regions = flat.shape
    valid = count_valid(flat_mask, batch, regions, flat.device)

    def ends(k: float | int, largest: bool) -> Tensor:
        chosen = torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
        if k == 0:
            return chosen.view(scores.shape)
        counts = resolve_count(k, valid)  # (B,)
        filled = flat.detach()
        if flat_mask is not None:
            fill = float("-inf") if largest else float("inf")
            filled = filled.masked_fill(~flat_mask.unsqueeze(1), fill)
        top = int(counts.max())
        indices = filled.topk(top, dim=2, largest=largest, sorted=True).indices
        keep = torch.arange(top, device=flat.device) < counts.view(batch, 1, 1)
        chosen.scatter_(2, indices, keep.expand_as(indices))
        return chosen.view(scores.shape)

    return ends(kmax, True), ends(kmin, False)
