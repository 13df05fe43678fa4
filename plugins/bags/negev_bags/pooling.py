"""The bags plugin's default pooling: the bag mean of the instance scores plus gated WILDCAT of the
scores' deviations from that mean.

    y[b, c] = m + gate * (top_kmax(z - m) + alpha * bottom_kmin(z - m)),   m = mean_h z[b, c, h]

(``top_k`` / ``bottom_k``: the mean of the k highest / lowest valid scores). With a linear
instance scorer ``z_h = <w, x_h> + b`` the mean term is ``<w, mean_h x_h> + b``, the linear model
on bag means (the practitioner's first MIL baseline); ``gate`` is learned and starts at 0, so the
model starts as that baseline (the plugin writes the convex fit into the scorer,
:mod:`negev_bags.warm_start`) and training adds the instances at the two ends as far as the loss
asks for them (negative evidence: "tumour AND NOT artefact"). The ends are read against the bag's
own average: a shift of all of a bag's scores (a slide's stain, a scanner) moves the mean term
only. One gate is shared by the classes (the pooling is built without knowing C).

Registered as the pooling ``meanwildcat`` (``kmax``, ``kmin``, ``alpha``) when the plugin is
imported. It is the bags plugin's form of the core's linear-term poolings (``gapwildcat``, built
for the table encoders' warm start); the two can become one once the core warm start reads dense
region features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.nn import register_pool
from negev.nn.functional import wildcat_pool, wildcat_selection
from negev.nn.functional._checks import check_count, check_finite_number, flatten_regions

__all__ = ["MeanWildcatPool", "mean_wildcat_pool"]


def mean_wildcat_pool(
    scores: Tensor,
    gate: Tensor,
    kmax: float | int = 0.02,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    mask: Tensor | None = None,
    *,
    validate_args: bool = True,
) -> Tensor:
    """``m + gate * (wildcat_pool(scores) - (1 + alpha) m)``, m the mean of the valid region
    scores: the deviations' WILDCAT (module doc).

    Args:
        scores: (B, C, *regions) float. gate: () or (C,) float. mask: (B, *regions) bool or None.
        kmax, kmin, alpha, validate_args: as in :func:`negev.nn.functional.wildcat_pool`.

    Returns:
        (B, C), dtype and device of ``scores``.
    """
    ends = wildcat_pool(scores, kmax, kmin, alpha, mask=mask, validate_args=validate_args)
    flat, flat_mask = flatten_regions(scores, mask)
    if flat_mask is None:
        mean = flat.mean(-1)
    else:
        valid = flat_mask.unsqueeze(1)
        count = valid.sum(-1).clamp_min(1).to(flat.dtype)
        mean = flat.masked_fill(~valid, 0.0).sum(-1) / count
    low = 0.0 if (kmax if kmin is None else kmin) == 0 else alpha  # no bottom end: no alpha
    return mean + gate * (ends - (1 + low) * mean)


class MeanWildcatPool(nn.Module):
    """:func:`mean_wildcat_pool` with a learned ``gate`` (a scalar parameter, 0 at first).

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(
        self,
        kmax: float | int = 0.02,
        kmin: float | int | None = None,
        alpha: float = 1.0,
        *,
        validate_args: bool = True,
    ):
        super().__init__()
        check_count("kmax", kmax, allow_zero=False)
        check_count("kmin", kmax if kmin is None else kmin, allow_zero=True)
        check_finite_number("alpha", alpha)
        self.kmax, self.kmin, self.alpha = kmax, kmin, alpha
        self.gate = nn.Parameter(torch.zeros(()))
        self.validate_args = validate_args

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return mean_wildcat_pool(
            scores, self.gate, self.kmax, self.kmin, self.alpha, mask,
            validate_args=self.validate_args,
        )  # fmt: skip

    def selection(self, scores: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(high, low) bool masks (B, C, *regions) of the regions of the WILDCAT term."""
        kmin = 0 if self.alpha == 0 else self.kmin
        return wildcat_selection(scores, self.kmax, kmin, mask=mask)

    def extra_repr(self) -> str:
        return f"kmax={self.kmax}, kmin={self.kmin}, alpha={self.alpha}"


@register_pool("meanwildcat", summary="bag mean + gate * WILDCAT (gate learned, 0 at first)")
def _meanwildcat(
    kmax: float | int = 0.02,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    validate_args: bool = True,
) -> MeanWildcatPool:
    return MeanWildcatPool(kmax, kmin, alpha, validate_args=validate_args)
