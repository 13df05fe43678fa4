"""Linear-softmax pooling (Wang, Li, Metze, ICASSP 2019), the audio-tagging baseline.

``p = sum_h sigma(z_h)^2 / sum_h sigma(z_h)``: each region's probability weighted by itself, so
confident regions dominate without discarding the rest. Returned as a logit, ``log p - log(1-p)``,
so that it trains with the same losses as the other poolings (``sigmoid(y) = p``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from negev.nn.functional._checks import count_valid, flatten_regions

__all__ = ["linear_softmax_pool", "probability_logit"]

# Probabilities are kept in [EPS, 1 - EPS] before the logit: |logit| <= ~16.1 in float32.
EPS = 1e-7


def probability_logit(p: Tensor) -> Tensor:
    """``log p - log(1 - p)`` with p clamped to [1e-7, 1 - 1e-7]."""
    p = p.clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def linear_softmax_pool(
    scores: Tensor, mask: Tensor | None = None, *, validate_args: bool = True
) -> Tensor:
    """Linear-softmax pooling of region logits into class logits.

    Args:
        scores: (B, C, *regions) float region logits. mask: (B, *regions) bool or None.
        validate_args: raise on a sample without valid region or a NaN result (host
            synchronisations); ``False`` runs without any.

    Returns:
        (B, C) class logits, ``logit(sum_h p_h^2 / sum_h p_h)`` with ``p_h = sigmoid(z_h)`` over the
        valid regions; float16/bfloat16 computed in float32.
    """
    flat, flat_mask = flatten_regions(scores, mask)
    if flat_mask is not None and validate_args:
        count_valid(flat_mask, flat.shape[0], flat.shape[2], flat.device)
    out_dtype = flat.dtype
    if flat_mask is not None:  # masked regions may hold anything, NaN included
        flat = flat.masked_fill(~flat_mask.unsqueeze(1), float("-inf"))
    p = torch.sigmoid(flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat)
    pooled = (p * p).sum(2) / p.sum(2).clamp_min(torch.finfo(p.dtype).tiny)
    if validate_args and torch.isnan(pooled).any():
        b, c = torch.isnan(pooled).nonzero()[0].tolist()
        raise ValueError(f"scores contain NaN in a valid region of batch index {b}, class {c}")
    return probability_logit(pooled).to(out_dtype)
