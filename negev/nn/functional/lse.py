"""Unified soft negative-evidence pooling with log-sum-exp (LSE).

``y_c = 1/b+ log(mean_h exp(b+ z_h)) + alpha * 1/b- log(mean_h exp(b- z_h))``

It spans the hard poolings smoothly: b+ -> +inf, b- -> -inf gives max + alpha * min; b+, b- -> 0
gives (1 + alpha) * mean.
"""

from __future__ import annotations

import torch
from torch import Tensor

from negev.nn.functional._checks import check_finite_number, count_valid, flatten_regions

__all__ = ["lse_pool"]


def lse_pool(
    scores: Tensor,
    beta_pos: float = 1.0,
    beta_neg: float = -1.0,
    alpha: float = 1.0,
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
) -> Tensor:
    """Log-sum-exp pooling of region scores into class scores.

    ``y[b, c] = soft(z[b, c], beta_pos) + alpha * soft(z[b, c], beta_neg)`` with
    ``soft(z, beta) = 1/beta * log(mean_h exp(beta * z_h))`` over the valid regions h, and
    ``soft(z, 0) = mean_h z_h`` (its limit). A positive beta is a soft max, a negative one a soft
    min. Computed as ``r + log1p(mean_h expm1(beta (z_h - r))) / beta`` with r the max (beta > 0)
    or min (beta < 0), which is stable for |beta| from 0 up to 1e4 and beyond.

    Args:
        scores: (B, C, *regions) float region scores.
        beta_pos: sharpness of the high term (any finite number, usually > 0).
        beta_neg: sharpness of the low term (any finite number, usually < 0).
        alpha: weight of the low term; 0 drops it.
        mask: (B, *regions) bool, True marks a valid region.
        validate_args: raise on a sample without valid region or NaN among the valid scores
            (host synchronisations); ``False`` runs without any.

    Returns:
        (B, C) class scores, dtype and device of ``scores`` (float16/bfloat16 are computed in
        float32).
    """
    check_finite_number("beta_pos", beta_pos)
    check_finite_number("beta_neg", beta_neg)
    check_finite_number("alpha", alpha)
    flat, flat_mask = flatten_regions(scores, mask)
    out_dtype = flat.dtype
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    valid = None
    if flat_mask is not None:
        batch, _, regions = flat.shape
        valid = count_valid(flat_mask, batch, regions, flat.device, validate_args=validate_args)
        valid = valid.unsqueeze(1).to(flat.dtype)
    pooled = _soft_extreme(flat, flat_mask, valid, beta_pos)
    if alpha != 0:
        pooled = pooled + alpha * _soft_extreme(flat, flat_mask, valid, beta_neg)
    if validate_args:
        nan = torch.isnan(pooled).nonzero()
        if nan.numel() > 0:
            b, c = nan[0].tolist()
            raise ValueError(f"scores contain NaN in a valid region of batch index {b}, class {c}")
    return pooled.to(out_dtype)


def _soft_extreme(
    flat: Tensor, flat_mask: Tensor | None, valid: Tensor | None, beta: float
) -> Tensor:
    """``1/beta log(mean_h exp(beta z_h))`` of (B, C, N) over valid h -> (B, C).

    ``valid``: (B, 1) number of valid regions as float, given with ``flat_mask``.
    """
    keep = None if flat_mask is None else flat_mask.unsqueeze(1)
    if beta == 0:
        if keep is None:
            return flat.mean(dim=2)
        return torch.where(keep, flat, flat.new_zeros(())).sum(dim=2) / valid
    hidden = float("-inf") if beta > 0 else float("inf")
    visible = flat if keep is None else flat.masked_fill(~keep, hidden)
    # Any constant reference r gives the same value; r = max (or min) keeps every exponent <= 0,
    # and treating it as a constant gives the exact gradient (softmax weights).
    ref = (visible.amax if beta > 0 else visible.amin)(dim=2, keepdim=True).detach()
    shifted = beta * (flat - ref)
    if keep is None:
        inner = torch.expm1(shifted).mean(dim=2)
    else:
        shifted = torch.where(keep, shifted, shifted.new_zeros(()))
        inner = torch.where(keep, torch.expm1(shifted), shifted.new_zeros(())).sum(dim=2) / valid
    return ref.squeeze(2) + torch.log1p(inner) / beta
