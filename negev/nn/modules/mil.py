"""Multiple-instance learning baselines as pooling modules (see :mod:`negev.nn.functional.mil`).

``forward(scores (B, C, *regions), mask (B, *regions) bool | None[, attention]) -> (B, C)``
logits. The attention pools set ``needs_attention`` and build, in ``attention_module(D, C)``, the
module over the instance features ``(..., D) -> (..., A)`` that gives their ``attention``
(B, A, *regions): :class:`~negev.nn.EvidenceHead` registers it, so that it trains with the head
(C is the head's ``pool_classes``: C*M with ``pool_each_map``, one attention per map).
``validate_args`` (default True): False skips the check that every bag has a valid instance, the
one host synchronisation.
"""

from __future__ import annotations

from torch import Tensor, nn

from negev.nn.functional.mil import attention_mil_pool, dsmil_pool, instance_mean_pool
from negev.nn.modules.pooling import _Validated

__all__ = [
    "AttentionMILPool",
    "DSMILPool",
    "GatedAttention",
    "GatedAttentionMILPool",
    "InstanceMeanPool",
]


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


class InstanceMeanPool(_Validated):
    """Instance classifier + mean of instance probabilities, see
    :func:`negev.nn.functional.instance_mean_pool`."""

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return instance_mean_pool(scores, mask, validate_args=self.validate_args)


class _NeedsAttention(_Validated):
    needs_attention = True

    def attention_module(self, in_channels: int, num_classes: int) -> nn.Module:
        """Linear attention logits ``a_ch = <u_c, x_h> + c_c``: (..., D) -> (..., C)."""
        return nn.Linear(in_channels, num_classes)

    def _check(self, attention: Tensor | None) -> Tensor:
        if attention is None:
            raise ValueError(
                f"{type(self).__name__} needs attention logits (use it in an EvidenceHead)"
            )
        return attention


class AttentionMILPool(_NeedsAttention):
    """Attention MIL (Ilse et al. 2018) with linear attention logits ``a_h = <u, x_h> + c``, see
    :func:`negev.nn.functional.attention_mil_pool`; :class:`GatedAttentionMILPool` is eq. 9."""

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        return attention_mil_pool(
            scores, self._check(attention), mask, validate_args=self.validate_args
        )


class GatedAttention(nn.Module):
    """Gated attention logits (Ilse et al. 2018, eq. 9), one per class:
    ``a_ch = <w_c, tanh(V x_h + b_V) * sigmoid(U x_h + b_U)>``.

    ``w`` has no bias (a softmax over instances ignores it). ``forward(x (..., D)) -> (..., C)``.

    Args:
        in_features: D. attention_dim: L, the size of V and U's outputs. num_classes: C.
    """

    def __init__(self, in_features: int, attention_dim: int, num_classes: int):
        super().__init__()
        self.V = nn.Linear(in_features, attention_dim)
        self.U = nn.Linear(in_features, attention_dim)
        self.w = nn.Linear(attention_dim, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w(self.V(x).tanh() * self.U(x).sigmoid())


class GatedAttentionMILPool(AttentionMILPool):
    """Gated attention MIL (Ilse et al. 2018, eq. 9): :class:`AttentionMILPool` whose attention
    logits come from :class:`GatedAttention` over the instance features.

    Args:
        attention_dim: L, the gated attention's hidden size (the paper's 128).
    """

    def __init__(self, attention_dim: int = 128, *, validate_args: bool = True):
        super().__init__(validate_args=validate_args)
        _check_size("attention_dim", attention_dim)
        self.attention_dim = attention_dim

    def attention_module(self, in_channels: int, num_classes: int) -> nn.Module:
        return GatedAttention(in_channels, self.attention_dim, num_classes)


class DSMILPool(_NeedsAttention):
    """DSMIL (Li, Li, Eliceiri 2021), see :func:`negev.nn.functional.dsmil_pool`: the head's
    scores are the instance classifier; the attention module, one linear map (..., D) ->
    (..., E + C), gives the query vectors ``q_h = W_q x_h`` (the paper's linear query; the authors'
    code defaults to a two-layer one) and the bag stream's instance logits ``s_h = W_b x_h + b``.

    Args:
        query_dim: E, the size of the query vectors (the authors' 128).
    """

    def __init__(self, query_dim: int = 128, *, validate_args: bool = True):
        super().__init__(validate_args=validate_args)
        _check_size("query_dim", query_dim)
        self.query_dim = query_dim

    def attention_module(self, in_channels: int, num_classes: int) -> nn.Module:
        return nn.Linear(in_channels, self.query_dim + num_classes)

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        attention = self._check(attention)
        expected = (scores.shape[0], self.query_dim + scores.shape[1], *scores.shape[2:])
        if attention.shape != expected:
            raise ValueError(
                f"DSMILPool attention must have shape (B, query_dim + C, *regions) = {expected}, "
                f"got {tuple(attention.shape)}"
            )
        queries, bag_scores = attention.split((self.query_dim, scores.shape[1]), dim=1)
        return dsmil_pool(scores, queries, bag_scores, mask, validate_args=self.validate_args)
