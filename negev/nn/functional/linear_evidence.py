"""Linear + negative-evidence pooling: a linear term over every region plus a gated WILDCAT."""

from __future__ import annotations

from torch import Tensor

from negev.nn.functional._checks import flatten_regions
from negev.nn.functional.wildcat import wildcat_pool

__all__ = ["LINEAR_TERMS", "linear_evidence_pool", "linear_term"]

LINEAR_TERMS = ("sum", "mean")


def linear_evidence_pool(
    scores: Tensor,
    bias: Tensor,
    gate: Tensor,
    kmax: float | int = 0.25,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    linear: str = "sum",
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
) -> Tensor:
    """``y[b, c] = bias[c] + L(z[b, c]) + gate[c] * wildcat(z[b, c])``.

    ``L`` is the sum (``linear="sum"``) or the mean (``"mean"``) of the valid region scores and
    ``wildcat`` is :func:`~negev.nn.functional.wildcat_pool` (mean of the ``kmax`` highest +
    ``alpha`` mean of the ``kmin`` lowest). When the region scores are linear in per-region
    features ``z[b, c, r] = w_c . f_r``, the linear term is a linear model on the pooled features
    (``sum_r f_r``, a count vector for one-hot ``f_r``; or their mean), so ``gate = 0`` is exactly
    that linear model and training adds the extreme regions to it.

    Args:
        scores: (B, C, *regions) float region scores. mask: (B, *regions) bool or None.
        bias, gate: (C,) or (1,) float, broadcast over the batch.
        kmax, kmin, alpha, validate_args: as in :func:`~negev.nn.functional.wildcat_pool`.
        linear: ``"sum"`` or ``"mean"``.

    Returns:
        (B, C) class scores, dtype and device of ``scores``.
    """
    term = linear_term(scores, mask, linear)
    extremes = wildcat_pool(scores, kmax, kmin, alpha, mask=mask, validate_args=validate_args)
    return bias + term + gate * extremes


def linear_term(scores: Tensor, mask: Tensor | None = None, linear: str = "sum") -> Tensor:
    """The sum (``linear="sum"``) or the mean (``"mean"``) of the valid region scores.

    Args:
        scores: (B, C, *regions) float. mask: (B, *regions) bool or None (all valid).

    Returns:
        (B, C), dtype and device of ``scores``; a sample without valid region gives 0.
    """
    if linear not in LINEAR_TERMS:
        raise ValueError(f"linear must be one of {', '.join(LINEAR_TERMS)}, got {linear!r}")
    flat, flat_mask = flatten_regions(scores, mask)
    if flat_mask is None:
        total, count = flat.sum(-1), flat.shape[-1]
    else:
        valid = flat_mask.unsqueeze(1)
        total = flat.masked_fill(~valid, 0.0).sum(-1)
        count = valid.sum(-1).clamp_min(1).to(flat.dtype)
    return total if linear == "sum" else total / count
