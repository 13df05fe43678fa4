"""Multiple-instance learning baselines on instance scores: what MIL users compare against.

* :func:`instance_mean_pool`: an instance classifier with mean pooling of the instance
  probabilities (mi-Net, Wang et al. 2018); with max pooling it is ``max`` (a logit's max is the
  max probability's logit).
* :func:`attention_mil_pool`: attention MIL (Ilse, Tomczak, Welling, ICML 2018): the bag
  embedding is ``sum_h softmax(a)_h x_h`` and the classifier is linear, so the bag logit is the
  attention-weighted mean of the instance logits ``z_h = <w, x_h> + b``.
  The attention logits come from the features: linear (``abmil``) or gated (``gabmil``, eq. 9:
  ``a_h = w^T (tanh(V x_h) * sigmoid(U x_h))``, :class:`~negev.nn.GatedAttention`).
* :func:`dsmil_pool`: DSMIL's two streams (Li, Li, Eliceiri, CVPR 2021): the critical instance's
  score (max stream) averaged with the score of the bag embedding weighted by the similarity of
  each instance's query vector to the critical instance's query.

Each takes ``validate_args`` (default True): False skips the check that every sample has a valid
instance, the one host synchronisation. The attention logits / queries come from a module over
the instance features (the :class:`~negev.nn.EvidenceHead` adds the pool's for pools with
``needs_attention``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from negev.nn.functional._checks import count_valid, flatten_regions
from negev.nn.functional.linear_softmax import probability_logit

__all__ = ["attention_mil_pool", "dsmil_pool", "instance_mean_pool"]


def _attention_of(
    scores: Tensor, attention: Tensor, mask: Tensor | None, validate_args: bool, name: str
):
    flat, flat_mask = flatten_regions(scores, mask)
    if not isinstance(attention, Tensor) or attention.shape != scores.shape:
        raise ValueError(
            f"{name} must have the shape of scores {tuple(scores.shape)}, got "
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
    flat, logits, flat_mask = _attention_of(scores, attention, mask, validate_args, "attention")
    weights = _masked_softmax(logits, flat_mask)
    return (weights * flat.masked_fill(weights == 0, 0.0)).sum(2)


def dsmil_pool(
    scores: Tensor,
    queries: Tensor,
    bag_scores: Tensor,
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
) -> Tensor:
    """DSMIL's dual stream (Li, Li, Eliceiri 2021, eq. 1-5).

    For class c: the critical instance ``m_c = argmax_h z_ch`` (max stream), the attention
    ``U_ch = softmax_h(<q_h, q_m_c> / sqrt(E))`` of each instance's query to the critical one's,
    and ``y_c = (z_cm_c + sum_h U_ch s_ch) / 2``. The bag stream classifies the attention-weighted
    embedding ``e_c = sum_h U_ch v_h`` linearly: with ``s_ch = <w_c, v_h> + beta_c`` (``v_h = x_h``,
    the authors' default, or a linear value projection folded into ``w_c``) and weights summing
    to one, ``<w_c, e_c> + beta_c = sum_h U_ch s_ch``. The 1/sqrt(E) scale is the authors' code's.

    Args:
        scores: (B, C, *regions) instance logits z (the instance classifier, max stream).
        queries: (B, E, *regions) query vectors q, E >= 1.
        bag_scores: (B, C, *regions) second-stream instance logits s.
        mask: (B, *regions) bool or None.

    Returns:
        (B, C) bag logits. Gradients reach the critical instance through both streams.
    """
    flat, s, flat_mask = _attention_of(scores, bag_scores, mask, validate_args, "bag_scores")
    if (
        not isinstance(queries, Tensor)
        or queries.dim() != scores.dim()
        or queries.shape[0] != scores.shape[0]
        or queries.shape[2:] != scores.shape[2:]
    ):
        got = tuple(queries.shape) if isinstance(queries, Tensor) else type(queries)
        raise ValueError(
            f"queries must have shape (B, E, *regions) with B, regions of scores "
            f"{tuple(scores.shape)}, got {got}"
        )
    q = queries.reshape(flat.shape[0], queries.shape[1], flat.shape[2])  # (B, E, N)
    masked = flat if flat_mask is None else flat.masked_fill(~flat_mask.unsqueeze(1), float("-inf"))
    critical = masked.argmax(2, keepdim=True)  # (B, C, 1)
    top = flat.gather(2, critical).squeeze(2)
    index = critical.squeeze(2).unsqueeze(1).expand(-1, q.shape[1], -1)  # (B, E, C)
    similarity = torch.einsum("ben,bec->bcn", q, q.gather(2, index)) / math.sqrt(q.shape[1])
    weights = _masked_softmax(similarity, flat_mask)
    second = (weights * s.masked_fill(weights == 0, 0.0)).sum(2)
    return (top + second) / 2
