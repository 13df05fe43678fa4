"""Multiple-instance learning baselines as pooling modules (see :mod:`negev.nn.functional.mil`).

``forward(scores (B, C, *regions), mask (B, *regions) bool | None[, attention]) -> (B, C)``
logits. The attention pools set ``needs_attention``: :class:`~negev.nn.EvidenceHead` adds the
projection of the instance features that gives the attention logits (or DSMIL's queries).
``validate_args`` (default True): False skips the check that every bag has a valid instance, the
one host synchronisation.
"""

from __future__ import annotations

from torch import Tensor

from negev.nn.functional.mil import attention_mil_pool, dsmil_pool, instance_mean_pool
from negev.nn.modules.pooling import _Validated

__all__ = ["AttentionMILPool", "DSMILPool", "InstanceMeanPool"]


class InstanceMeanPool(_Validated):
    """Instance classifier + mean of instance probabilities, see
    :func:`negev.nn.functional.instance_mean_pool`."""

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return instance_mean_pool(scores, mask, validate_args=self.validate_args)


class _NeedsAttention(_Validated):
    needs_attention = True

    def _check(self, attention: Tensor | None) -> Tensor:
        if attention is None:
            raise ValueError(
                f"{type(self).__name__} needs attention logits (use it in an EvidenceHead)"
            )
        return attention


class AttentionMILPool(_NeedsAttention):
    """Attention MIL (Ilse et al. 2018), see :func:`negev.nn.functional.attention_mil_pool`."""

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        return attention_mil_pool(
            scores, self._check(attention), mask, validate_args=self.validate_args
        )


class DSMILPool(_NeedsAttention):
    """DSMIL-style dual stream, see :func:`negev.nn.functional.dsmil_pool` (the head's attention
    projection gives the queries)."""

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        return dsmil_pool(scores, self._check(attention), mask, validate_args=self.validate_args)
