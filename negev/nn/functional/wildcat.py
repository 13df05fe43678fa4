"""WILDCAT / WELDON spatial pooling: the k+ highest and the k- lowest region scores.

``y_c = mean(top_kmax(z_c)) + alpha * mean(bottom_kmin(z_c))`` over the valid regions of a sample.

Special cases: max (kmax=1, alpha=0), global average (kmax=n, alpha=0), max+min (1, 1, 1),
WELDON (k, k, 1), WILDCAT (kmax, kmin, alpha with M maps per class, see
:func:`~negev.nn.functional.class_wise_pool`).

Paths, chosen by device and size (:func:`choose_path`): on a CUDA device with Triton, float32 /
float16 / bfloat16 scores of at most 4096 regions run as one Triton kernel per pass (forward,
backward), one program per (sample, class) row (:mod:`negev.nn.functional._wildcat_triton`),
except many long rows with k > 2, which one ``torch.sort`` of the rows serves faster; elsewhere
(the CPU) the ends are selected with ``torch.topk`` / ``max`` / ``min`` (a sort for short rows
with large k).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from negev.nn.functional import _wildcat_triton
from negev.nn.functional._checks import (
    check_count,
    check_wildcat_args,
    count_valid,
    flatten_regions,
    raise_if_nan,
    resolve_count,
)

__all__ = ["choose_path", "wildcat_pool", "wildcat_selection"]

# Triton's in-register sort of a row of int64 keys is fast up to a 256-key block, and slows down
# (register spills) beyond. Measured on an H200 (torch 2.11, Triton 3.6, fwd + bwd, GPU kernel
# time, benchmarks/results/pooling_cuda.md): with a 1,024-key block (28x28 regions) the kernel
# beat the full sort at 160 rows (125k scores: 1.40x) but lost at 640 rows (500k: 0.86x) and
# 1,280 (1M: 0.73x); with 256-key blocks it won everywhere (4-9x), 64 x 1000 rows of 14x14
# included (5.3x).
_FUSED_SORT_BLOCK = 256
_FUSED_SORT_ELEMENTS = 2**18


def choose_path(rows: int, regions: int, k_most: int, *, fused: bool) -> str:
    """Which implementation pools ``rows`` rows of ``regions`` scores (``k_most``: the larger k).

    - ``"triton"``: the fused kernels, where they are available (``fused``: a CUDA device with
      Triton, see :func:`negev.nn.functional._wildcat_triton.supports`) and either k <= 2 (the
      ends by 2k reductions, O(N) per row), or the rows' sort block (N rounded up to a power of
      two) has at most 256 keys, or rows x N <= 2^18 elements (small sizes, where one kernel
      per pass beats the sort's several);
    - ``"sort"``: else on such a device: one ``torch.sort`` of every row, a weighted sum of the
      sorted scores, and a scatter of the gradient into the sorted indices (the full-sort
      reference's own work, with fewer kernels);
    - ``"select"``: without the kernels (the CPU): ``topk`` / ``max`` / ``min``.
    """
    if not fused:
        return "select"
    if k_most <= _wildcat_triton.ROUNDS_UP_TO:
        return "triton"
    block = 1 << max(regions - 1, 0).bit_length()
    if block <= _FUSED_SORT_BLOCK or rows * regions <= _FUSED_SORT_ELEMENTS:
        return "triton"
    return "sort"


def wildcat_pool(
    scores: Tensor,
    kmax: float | int = 1,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
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
        validate_args: check the values too (a sample without valid region, NaN among the valid
            scores); each check copies a result to the host. ``False`` runs without any host
            synchronisation (for ``torch.compile(fullgraph=True)`` and export); the selection
            then takes the static bound of k (its value at all N regions) and masks the rest.

    Returns:
        (B, C) class scores, dtype and device of ``scores``. Gradients flow only into the selected
        regions (the sub-gradient of top-k).

    Raises:
        ValueError: bad k or alpha, mismatched shapes, and with ``validate_args``, a sample
            without valid region or NaN among the valid scores.
    """
    check_wildcat_args(kmax, kmin, alpha)
    kmin = kmax if kmin is None else kmin
    flat, flat_mask = flatten_regions(scores, mask)
    batch, classes, regions = flat.shape
    use_low = kmin != 0 and alpha != 0
    fused = _wildcat_triton.supports(flat)

    # a region count known only at run time (a dynamic dim under torch.export) takes the
    # per-sample path below: no Python arithmetic on it, which an exported graph could not hold
    symbolic = isinstance(regions, torch.SymInt)
    if flat_mask is None and not symbolic:
        kmax_n = _uniform_count(kmax, regions)
        kmin_n = _uniform_count(kmin, regions) if use_low else 0
        path = choose_path(batch * classes, regions, max(kmax_n, kmin_n), fused=fused)
        if path == "triton":  # one fused kernel per pass on a GPU
            out = _fused(flat, None, None, None, kmax_n, kmin_n, alpha, validate_args)
            if out is not None:
                return out
        ends = (flat, kmax_n, kmin_n, float(alpha), path == "sort", validate_args)
        if torch.is_grad_enabled() and flat.requires_grad:
            return _TopBottomMean.apply(*ends)
        return _top_bottom_mean(*ends)[0]  # no autograd.Function: what TorchScript can hold

    valid = count_valid(flat_mask, batch, regions, flat.device, validate_args=validate_args)
    k_high = resolve_count(kmax, valid)
    k_low = resolve_count(kmin, valid) if use_low else k_high
    if validate_args:  # the exact maxima, read on the host
        most_high, most_low = torch.stack([k_high.max(), k_low.max()]).tolist()
    elif symbolic:  # a full sort
        most_high = most_low = regions
    else:  # their static bounds: k at all N regions
        most_high, most_low = _uniform_count(kmax, regions), _uniform_count(kmin, regions)
    most_low = most_low if use_low else 0
    if fused and not symbolic:
        if choose_path(batch * classes, regions, max(most_high, most_low), fused=True) == "triton":
            out = _fused(flat, flat_mask, k_high, k_low, most_high, most_low, alpha, validate_args)
            if out is not None:
                return out
    # (with a mask, the "sort" path is the two top-k selections below)
    high = _masked_extreme_mean(
        flat, flat_mask, k_high, most_high, largest=True, validate=validate_args
    )
    if not use_low:
        return high
    low = _masked_extreme_mean(flat, flat_mask, k_low, most_low, largest=False, validate=False)
    return high + alpha * low


def _fused(
    flat: Tensor,
    flat_mask: Tensor | None,
    k_high: Tensor | None,
    k_low: Tensor | None,
    kmax: int,
    kmin: int,
    alpha: float,
    validate_args: bool,
) -> Tensor | None:
    """The Triton kernels' pooling, or None if they fail to build here (then turned off: a
    Triton or GPU they do not support must not stop training; the warning names the error)."""
    try:
        out = _wildcat_triton.pool(flat, flat_mask, k_high, k_low, kmax, kmin, float(alpha))
    except Exception as error:  # noqa: BLE001 - compilation errors have no common type
        _wildcat_triton.disable(error)
        return None
    if validate_args and torch.isnan(out).any():  # NaN is kept as the largest, so reaches `out`
        raise_if_nan(out.unsqueeze(2))
    return out


def _uniform_count(k: float | int, regions: int) -> int:
    """Number of regions for ``k`` when every sample has ``regions`` valid regions (a traced size,
    under ``torch.jit.trace``, is read as the constant it had)."""
    regions = int(regions)
    if 0 < k < 1:
        return max(1, round(k * regions))
    return min(int(k), regions)


# Below this many regions a full sort beats two top-k selections when k is large (CPU timings).
_SORT_BELOW_REGIONS = 64


def _select_ends(
    flat: Tensor, kmax: int, kmin: int, alpha: float, full_sort: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Pick the regions of both ends of (B, C, N) along N, with their weight in the output.

    Returns values (B, C, m), their region indices (B, C, m) and weights (m,) such that
    ``out = values @ weights``: 1/kmax on the kmax largest, alpha/kmin on the kmin smallest.
    One pass for both ends where it pays: ``max``/``min`` for k = 1, one full sort for small N with
    large k or when ``full_sort`` asks for it, else two ``topk(sorted=False)`` selections (O(N)
    each instead of O(N log N)).
    """
    regions = flat.shape[2]

    def weights(n_high: int, n_mid: int, n_low: int) -> Tensor:
        args = (n_high, n_mid, n_low, kmax, kmin, alpha, flat.device, flat.dtype)
        if torch.compiler.is_compiling():  # a tensor made while tracing must not be cached
            return _end_weights.__wrapped__(*args)
        return _end_weights(*args)

    if kmax == 1 and kmin <= 1 and not full_sort:
        high_v, high_i = flat.max(dim=2, keepdim=True)
        if kmin == 0:
            return high_v, high_i, weights(1, 0, 0)
        low_v, low_i = flat.min(dim=2, keepdim=True)
        return torch.cat([high_v, low_v], 2), torch.cat([high_i, low_i], 2), weights(1, 0, 1)
    if full_sort or (regions <= _SORT_BELOW_REGIONS and kmax + kmin >= regions / 2):
        values, indices = flat.sort(dim=2, descending=True)
        if not full_sort:  # short rows (the CPU): weights over the whole row, the fewest ops;
            # kmax + kmin > N makes the ends overlap: the middle weights then add up
            w = weights(kmax, regions - kmax, 0) + weights(0, regions - kmin, kmin)
            return values, indices, w
        if kmin == 0:
            return values[..., :kmax], indices[..., :kmax], weights(kmax, 0, 0)
        # many long rows (the GPU "sort" path): only the ends are kept, for the backward too;
        # overlapping ends (kmax + kmin > N) hold a region twice, with both weights
        low = regions - kmin
        return (
            torch.cat([values[..., :kmax], values[..., low:]], 2),
            torch.cat([indices[..., :kmax], indices[..., low:]], 2),
            weights(kmax, 0, kmin),
        )
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


def _top_bottom_mean(
    flat: Tensor, kmax: int, kmin: int, alpha: float, full_sort: bool, validate: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The pooled (B, C) scores of :class:`_TopBottomMean`, with the selected indices and their
    weights (see :func:`_select_ends`)."""
    values, indices, weights = _select_ends(flat, kmax, kmin, alpha, full_sort)
    out = values @ weights
    if validate and torch.isnan(out).any():  # NaN is selected as the largest, reaches `out`
        raise_if_nan(values[..., :1] if kmax == 1 else values)
    return out, indices, weights


class _TopBottomMean(torch.autograd.Function):
    """``mean(top kmax) + alpha * mean(bottom kmin)`` of (B, C, N) along N, every region valid.

    The backward scatters the output gradient straight into the selected regions: only their
    (B, C, m) indices are kept for it, not a sorted copy of the input.
    """

    @staticmethod
    def forward(
        ctx, flat: Tensor, kmax: int, kmin: int, alpha: float, full_sort: bool, validate: bool
    ) -> Tensor:
        out, indices, weights = _top_bottom_mean(flat, kmax, kmin, alpha, full_sort, validate)
        ctx.save_for_backward(indices, weights)
        ctx.shape = flat.shape
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None, None, None, None]:
        indices, weights = ctx.saved_tensors
        # scatter_add: a region in both ends (kmax + kmin > N) gets both weights.
        grad_in = grad.new_zeros(ctx.shape)
        # (an upstream `sum()` hands an expanded, stride-0 grad: densify it before broadcasting)
        grad_in.scatter_add_(2, indices, grad.contiguous().unsqueeze(2) * weights)
        return grad_in, None, None, None, None, None


def _masked_extreme_mean(
    flat: Tensor, flat_mask: Tensor | None, k: Tensor, most: int, *, largest: bool, validate: bool
) -> Tensor:
    """Mean of the k[b] largest (or smallest) valid scores of each sample.

    Args:
        flat: (B, C, N) scores. flat_mask: (B, N) bool, or None (all valid).
        k: (B,) int64, 1 <= k[b] <= valid[b].
        most: a host-side bound of k, max(k) <= most <= N: the selection takes ``most`` values.
        validate: raise on NaN among the selected top values (a host synchronisation).

    Returns:
        (B, C).
    """
    fill = float("-inf") if largest else float("inf")
    filled = flat if flat_mask is None else flat.masked_fill(~flat_mask.unsqueeze(1), fill)
    values = torch.topk(filled, most, dim=2, largest=largest, sorted=True).values
    if largest and validate:
        raise_if_nan(values)
    keep = torch.arange(most, device=flat.device) < k.unsqueeze(1)  # (B, most)
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
