"""Multiple-instance learning baselines on instance scores: what MIL users compare against.

* :func:`instance_mean_pool`: an instance classifier with mean pooling of the instance
  probabilities (mi-Net, Wang et al. 2018); with max pooling it is ``max`` (a logit's max is the
  max probability's logit).
* :func:`attention_mil_pool`: attention MIL (Ilse, Tomczak, Welling, ICML 2018): the bag
  embedding is ``sum_h softmax(a)_h x_h`` and the classifier is linear, so the bag logit is the
  attention-weighted mean of the instance logits ``z_h = <w, x_h> + b``.
* :func:`dsmil_pool`: DSMIL's two streams (Li, Li, Eliceiri, CVPR 2021): the critical instance's
  score (max stream) averaged with an attention stream whose attention is the similarity of each
  instance's query to the critical instance's query.

Each takes ``validate_args`` (default True): False skips the check that every sample has a valid
instance, the one host synchronisation. The attention logits / queries come from a projection of
the instance features (the :class:`~negev.nn.EvidenceHead` adds it for pools with
``needs_attention``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from negev.nn.functional._checks import count_valid, flatten_regions
from negev.nn.functional.linear_softmax import probability_logit

__all__ = ["attention_mil_pool", "dsmil_pool", "instance_mean_pool"]


def _attention_of(scores: Tensor, attention: Tensor, mask: Tensor | None, validate_args: bool):
    flat, flat_mask = flatten_regions(scores, mask)
    if not isinstance(attention, Tensor) or attention.shape != scores.shape:
        raise ValueError(
            f"attention must have the shape of scores {tuple(scores.shape)}, got "
            f"{tuple(attention.shape) if isinstance(attention, Tensor) else type(attention)}"
        )
    if flat_mask is not None and validate_args:
        count_valid(flat_mask, flat.shape[0], flat.shape[2], flat.device)
    return flat, attention.reshape(flat.shape), flat_mask


def _masked_softmax(logits: Tensor, flat_mask: Tensor | None) -> Tensor:
    if flat_mask is not None:
        logits = logits.masked_fill(~flat_mask.unsqueeze(1), float("-inf"))
    return torch.softmax(logits, dim=2)


def instance_mean_pool(
    scores: Tensor, mask: Tensor | None = None, *, validate_args: bool = True
) -> Tensor:
    """Mean of the instance probabilities, as a logit.

    Args:
        scores: (B, C, *regions) float instance logits z. mask: (B, *regions) bool or None.

    Returns:
        (B, C) ``logit(mean_h sigmoid(z_h))`` over the valid instances.
    """
    flat, flat_mask = flatten_regions(scores, mask)
    compute = torch.float32 if flat.dtype in (torch.float16, torch.bfloat16) else flat.dtype
    probs = torch.sigmoid(flat.to(compute))
    if flat_mask is None:
        mean = probs.mean(2)
    else:
        valid = count_valid(
            flat_mask, flat.shape[0], flat.shape[2], flat.device, validate_args=validate_args
        )
        mean = (probs * flat_mask.unsqueeze(1)).sum(2) / valid.unsqueeze(1)
    return probability_logit(mean).to(flat.dtype)


def attention_mil_pool(
    scores: Tensor, attention: Tensor, mask: Tensor | None = None, *, validate_args: bool = True
) -> Tensor:
    """Attention MIL: ``y_c = sum_h softmax_h(a_ch) z_ch`` over the valid instances.

    Args:
        scores: (B, C, *regions) instance logits z. attention: the same shape, attention logits a.
        mask: (B, *regions) bool or None.

    Returns:
        (B, C) bag logits.
    """
    flat, logits, flat_mask = _attention_of(scores, attention, mask, validate_args)
    weights = _masked_softmax(logits, flat_mask)
    return (weights * flat.masked_fill(weights == 0, 0.0)).sum(2)


def dsmil_pool(
    scores: Tensor, queries: Tensor, mask: Tensor | None = None, *, validate_args: bool = True
) -> Tensor:
    """DSMIL-style dual stream with one-dimensional queries per class.

    ``m_c = argmax_h z_ch`` (the critical instance), ``a_ch = softmax_h(q_ch * q_cm_c)``,
    ``y_c = (z_cm_c + sum_h a_ch z_ch) / 2``. DSMIL's queries are vectors and its second stream
    classifies the attention-weighted embedding; with a linear classifier that is the weighted
    mean of instance logits, as here, and the query of class c is one number per instance.

    Args:
        scores: (B, C, *regions) instance logits z. queries: the same shape, q.
        mask: (B, *regions) bool or None.

    Returns:
        (B, C) bag logits. Gradients reach the critical instance through both streams.
    """
    flat, q, flat_mask = _attention_of(scores, queries, mask, validate_args)
    masked = flat if flat_mask is None else flat.masked_fill(~flat_mask.unsqueeze(1), float("-inf"))
    critical = masked.argmax(2, keepdim=True)  # (B, C, 1)
    top = flat.gather(2, critical).squeeze(2)
    weights = _masked_softmax(q * q.gather(2, critical), flat_mask)
    second = (weights * flat.masked_fill(weights == 0, 0.0)).sum(2)
    return (top + second) / 2
