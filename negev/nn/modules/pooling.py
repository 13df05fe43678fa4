"""Pooling modules: thin :class:`torch.nn.Module` wrappers of :mod:`negev.nn.functional`.

Arguments are validated at construction, so a bad configuration fails before any data flows.
Each pooling takes ``validate_args`` (default True, as in torchmetrics; an attribute that can be
changed later): False skips the checks of the values (NaN scores, a sample without valid region),
so that the forward pass runs without any host synchronisation (``torch.compile(fullgraph=True)``,
export).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.nn.functional import (
    attention_pool,
    class_wise_pool,
    linear_evidence_pool,
    linear_softmax_pool,
    lse_pool,
    wildcat_pool,
    wildcat_selection,
)
from negev.nn.functional._checks import check_finite_number, check_wildcat_args

__all__ = [
    "AttentionPool",
    "ClassWisePool",
    "LSEPool",
    "LinearEvidencePool",
    "LinearSoftmaxPool",
    "WildcatPool",
]


class WildcatPool(nn.Module):
    """Negative-evidence spatial pooling, see :func:`negev.nn.functional.wildcat_pool`.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(
        self,
        kmax: float | int = 1,
        kmin: float | int | None = None,
        alpha: float = 1.0,
        *,
        validate_args: bool = True,
    ):
        super().__init__()
        check_wildcat_args(kmax, kmin, alpha)
        self.kmax, self.kmin, self.alpha = kmax, kmin, alpha
        self.validate_args = validate_args

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return wildcat_pool(
            scores, self.kmax, self.kmin, self.alpha, mask=mask, validate_args=self.validate_args
        )

    def selection(self, scores: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(high, low) bool masks (B, C, *regions) of the regions this pooling keeps; the low
        end is empty when alpha is 0. See :func:`negev.nn.functional.wildcat_selection`."""
        kmin = 0 if self.alpha == 0 else self.kmin
        return wildcat_selection(scores, self.kmax, kmin, mask=mask)

    def extra_repr(self) -> str:
        return f"kmax={self.kmax}, kmin={self.kmin}, alpha={self.alpha}"


class LinearEvidencePool(nn.Module):
    """A linear term over every region plus gated WILDCAT, see
    :func:`negev.nn.functional.linear_evidence_pool`:
    ``y[b, c] = bias[c] + L(z[b, c]) + gate[c] * wildcat(z[b, c])``.

    ``bias`` and ``gate`` are learned, (num_classes,) each, zero at first: the pooling starts as
    its linear term (``linear_term``: ``"sum"`` or ``"mean"``), which
    :func:`negev.engine.warm_start.linear_warm_start` can fit convexly before training.
    ``num_classes=1`` shares one bias and gate between the classes.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(
        self,
        kmax: float | int = 0.25,
        kmin: float | int | None = None,
        alpha: float = 1.0,
        linear: str = "sum",
        num_classes: int = 1,
        *,
        validate_args: bool = True,
    ):
        super().__init__()
        check_wildcat_args(kmax, kmin, alpha)
        if linear not in ("sum", "mean"):
            raise ValueError(f"linear must be 'sum' or 'mean', got {linear!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        self.kmax, self.kmin, self.alpha, self.linear_term = kmax, kmin, alpha, linear
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.gate = nn.Parameter(torch.zeros(num_classes))
        self.validate_args = validate_args

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return linear_evidence_pool(
            scores, self.bias, self.gate, self.kmax, self.kmin, self.alpha, self.linear_term,
            mask=mask, validate_args=self.validate_args,
        )  # fmt: skip

    @torch.no_grad()
    def start_linear(self, intercept: Tensor) -> None:
        """Make the pooling its linear term plus ``intercept`` (C,): bias = intercept, gate = 0."""
        self.bias.copy_(intercept.to(self.bias).expand_as(self.bias))
        self.gate.zero_()

    def selection(self, scores: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(high, low) bool masks (B, C, *regions) of the regions of the WILDCAT term."""
        kmin = 0 if self.alpha == 0 else self.kmin
        return wildcat_selection(scores, self.kmax, kmin, mask=mask)

    def extra_repr(self) -> str:
        return (
            f"kmax={self.kmax}, kmin={self.kmin}, alpha={self.alpha}, linear={self.linear_term!r}"
        )


class LSEPool(nn.Module):
    """Unified log-sum-exp pooling, see :func:`negev.nn.functional.lse_pool`.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(
        self,
        beta_pos: float = 1.0,
        beta_neg: float = -1.0,
        alpha: float = 1.0,
        *,
        validate_args: bool = True,
    ):
        super().__init__()
        for name, value in (("beta_pos", beta_pos), ("beta_neg", beta_neg), ("alpha", alpha)):
            check_finite_number(name, value)
        self.beta_pos, self.beta_neg, self.alpha = beta_pos, beta_neg, alpha
        self.validate_args = validate_args

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return lse_pool(
            scores, self.beta_pos, self.beta_neg, self.alpha, mask=mask,
            validate_args=self.validate_args,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"beta_pos={self.beta_pos}, beta_neg={self.beta_neg}, alpha={self.alpha}"


class ClassWisePool(nn.Module):
    """Average of the M maps of each class, see :func:`negev.nn.functional.class_wise_pool`.

    ``forward(maps (B, C*M, *regions)) -> (B, C, *regions)``.
    """

    def __init__(self, num_maps: int = 1):
        super().__init__()
        if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 1:
            raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
        self.num_maps = num_maps

    def forward(self, maps: Tensor) -> Tensor:
        return class_wise_pool(maps, self.num_maps)

    def extra_repr(self) -> str:
        return f"num_maps={self.num_maps}"


class _Validated(nn.Module):
    """A pooling without hyper-parameters but ``validate_args``."""

    def __init__(self, *, validate_args: bool = True):
        super().__init__()
        self.validate_args = validate_args


class LinearSoftmaxPool(_Validated):
    """Linear-softmax pooling, see :func:`negev.nn.functional.linear_softmax_pool`.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)`` logits.
    """

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return linear_softmax_pool(scores, mask=mask, validate_args=self.validate_args)


class AttentionPool(_Validated):
    """Attention pooling, see :func:`negev.nn.functional.attention_pool`.

    ``forward(scores, mask, attention) -> (B, C)`` logits, ``attention`` of the shape of
    ``scores``. :class:`~negev.nn.EvidenceHead` sees ``needs_attention`` and adds the projection
    that produces the attention logits from the region features.
    """

    needs_attention = True

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        if attention is None:
            raise ValueError("AttentionPool needs attention logits (use it in an EvidenceHead)")
        return attention_pool(scores, attention, mask=mask, validate_args=self.validate_args)
