"""The bags plugin's default pooling: a bag-mean linear model plus WILDCAT of instance evidence
read against the bag's own average.

    y[b, c] = mean_h a[b, c, h] + top_kmax(z[b, c] - m) + alpha * bottom_kmin(z[b, c] - m)

with ``m = mean_h z[b, c, h]``, ``top_k`` / ``bottom_k`` the mean of the k highest / lowest valid
values, ``z`` the head's instance scores (the class maps: the evidence that explanations show)
and ``a`` a second linear map of the instance features (the pooling's ``attention_module``,
Linear(D, C), which the head registers and feeds). The mean term ``mean_h <u, x_h> + c =
<u, mean_h x_h> + c`` is the linear model on bag means, the practitioner's first MIL baseline; the
evidence term is 0 when ``z`` is 0. The bags plugin starts ``a`` at the convex fit of that
baseline and ``z`` at 0 (:mod:`negev_bags.warm_start`): the model starts as the baseline exactly,
and training (from ``z`` at 1% of the baseline's instance scores, which ranks the instances) adds
instance evidence to it as far as the loss asks for it. ``z`` enters the score directly (no
multiplicative gate at 0, which gradient descent leaves slowly). The ends are read against the
bag's average: a shift of all of a bag's scores (a slide's stain, a scanner) changes nothing in
the evidence term.

Registered as the pooling ``meanwildcat`` (``kmax``, ``kmin``, ``alpha``) when the plugin is
imported. It is the bags plugin's form of the core's linear-term poolings (``gapwildcat``, built
for the table encoders' warm start); the two can become one once the core warm start reads dense
region features.
"""

from __future__ import annotations

from torch import Tensor, nn

from negev.nn import WildcatPool, register_pool
from negev.nn.functional import wildcat_pool
from negev.nn.functional.linear_evidence import linear_term

__all__ = ["MeanWildcatPool", "mean_wildcat_pool"]


def mean_wildcat_pool(
    scores: Tensor,
    linear: Tensor,
    kmax: float | int = 0.02,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
) -> Tensor:
    """``mean(linear) + wildcat_pool(scores - mean(scores))`` over the valid regions (module doc).

    Args:
        scores: (B, C, *regions) float, the instance evidence z. linear: same shape, the
            instance terms of the bag-mean model. mask: (B, *regions) bool or None.
        kmax, kmin, alpha, validate_args: as in :func:`negev.nn.functional.wildcat_pool`.

    Returns:
        (B, C), dtype and device of ``scores``.
    """
    ends = wildcat_pool(scores, kmax, kmin, alpha, mask=mask, validate_args=validate_args)
    low = 0.0 if (kmax if kmin is None else kmin) == 0 else alpha  # no bottom end: no alpha
    # top_k(z - m) + alpha bottom_k(z - m) = top_k(z) + alpha bottom_k(z) - (1 + alpha) m
    return linear_term(linear, mask, "mean") + ends - (1 + low) * linear_term(scores, mask, "mean")


class MeanWildcatPool(WildcatPool):
    """:func:`mean_wildcat_pool`; the bag-mean model's instance terms come from the pooling's
    attention module (Linear(D, C), registered by :class:`~negev.nn.EvidenceHead`). The
    arguments, their checks and :meth:`selection` (the regions of the WILDCAT term) are
    :class:`~negev.nn.WildcatPool`'s.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None, attention (B, C,
    *regions)) -> (B, C)``.
    """

    needs_attention = True

    def __init__(
        self,
        kmax: float | int = 0.02,
        kmin: float | int | None = None,
        alpha: float = 1.0,
        *,
        validate_args: bool = True,
    ):
        super().__init__(kmax, kmin, alpha, validate_args=validate_args)

    def attention_module(self, in_channels: int, num_classes: int) -> nn.Module:
        """The bag-mean model's linear instance terms ``<u_c, x_h> + c_c``: (..., D) -> (..., C)."""
        return nn.Linear(in_channels, num_classes)

    def forward(
        self, scores: Tensor, mask: Tensor | None = None, attention: Tensor | None = None
    ) -> Tensor:
        if attention is None:
            raise ValueError("MeanWildcatPool needs its linear terms (use it in an EvidenceHead)")
        return mean_wildcat_pool(
            scores, attention, self.kmax, self.kmin, self.alpha, mask,
            validate_args=self.validate_args,
        )  # fmt: skip


@register_pool("meanwildcat", summary="bag-mean linear model + WILDCAT of the evidence - its mean")
def _meanwildcat(
    kmax: float | int = 0.02,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    validate_args: bool = True,
) -> MeanWildcatPool:
    return MeanWildcatPool(kmax, kmin, alpha, validate_args=validate_args)
