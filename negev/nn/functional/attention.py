"""Attention pooling (Kong et al. 2019; Xu et al. 2018), the other audio-tagging baseline.

``p = sum_h softmax_h(a_h) * sigma(z_h)``: a second map of attention logits ``a`` decides how much
each region's probability counts. Returned as a logit (``sigmoid(y) = p``) like
:func:`~negev.nn.functional.linear_softmax_pool`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from negev.nn.functional._checks import count_valid, flatten_regions
from negev.nn.functional.linear_softmax import probability_logit

__all__ = ["attention_pool"]


def attention_pool(
    scores: Tensor, attention: Tensor, mask: Tensor | None = None, *, validate_args: bool = True
) -> Tensor:
    """Attention pooling of region logits into class logits.

    Args:
        scores: (B, C, *regions) float region logits z. attention: same shape, attention logits a
            (normalised with a softmax over the valid regions of each class). mask: (B, *regions)
            bool or None. validate_args: raise on a sample without valid region or a NaN result
            (host synchronisations); ``False`` runs without any.

    Returns:
        (B, C) class logits ``logit(sum_h softmax(a)_h sigmoid(z_h))``.
    """
    flat, flat_mask = flatten_regions(scores, mask)
    if not isinstance(attention, Tensor) or attention.shape != scores.shape:
        raise ValueError(
            f"attention must have the shape of scores {tuple(scores.shape)}, got "
            f"{tuple(attention.shape) if isinstance(attention, Tensor) else type(attention)}"
        )
    weights = attention.reshape(flat.shape)
    if flat_mask is not None:
        if validate_args:
            count_valid(flat_mask, flat.shape[0], flat.shape[2], flat.device)
        weights = weights.masked_fill(~flat_mask.unsqueeze(1), float("-inf"))
        flat = flat.masked_fill(~flat_mask.unsqueeze(1), 0.0)
    out_dtype = flat.dtype
    compute = torch.float32 if out_dtype in (torch.float16, torch.bfloat16) else out_dtype
    pooled = (torch.softmax(weights.to(compute), dim=2) * torch.sigmoid(flat.to(compute))).sum(2)
    if validate_args and torch.isnan(pooled).any():
        b, c = torch.isnan(pooled).nonzero()[0].tolist()
        raise ValueError(
            f"scores or attention contain NaN in a valid region of batch index {b}, class {c}"
        )
    return probability_logit(pooled).to(out_dtype)
