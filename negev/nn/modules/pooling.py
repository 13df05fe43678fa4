"""Pooling modules: thin :class:`torch.nn.Module` wrappers of :mod:`negev.nn.functional`.

Arguments are validated at construction, so a bad configuration fails before any data flows.
"""

from __future__ import annotations

from torch import Tensor, nn

from negev.nn.functional import class_wise_pool, lse_pool, wildcat_pool
from negev.nn.functional._checks import check_count, check_finite_number

__all__ = ["ClassWisePool", "LSEPool", "WildcatPool"]


class WildcatPool(nn.Module):
    """Negative-evidence spatial pooling, see :func:`negev.nn.functional.wildcat_pool`.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(self, kmax: float | int = 1, kmin: float | int | None = None, alpha: float = 1.0):
        super().__init__()
        check_count("kmax", kmax, allow_zero=False)
        check_count("kmin", kmax if kmin is None else kmin, allow_zero=True)
        check_finite_number("alpha", alpha)
        self.kmax, self.kmin, self.alpha = kmax, kmin, alpha

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return wildcat_pool(scores, self.kmax, self.kmin, self.alpha, mask=mask)

    def extra_repr(self) -> str:
        return f"kmax={self.kmax}, kmin={self.kmin}, alpha={self.alpha}"


class LSEPool(nn.Module):
    """Unified log-sum-exp pooling, see :func:`negev.nn.functional.lse_pool`.

    ``forward(scores (B, C, *regions), mask (B, *regions) bool | None) -> (B, C)``.
    """

    def __init__(self, beta_pos: float = 1.0, beta_neg: float = -1.0, alpha: float = 1.0):
        super().__init__()
        for name, value in (("beta_pos", beta_pos), ("beta_neg", beta_neg), ("alpha", alpha)):
            check_finite_number(name, value)
        self.beta_pos, self.beta_neg, self.alpha = beta_pos, beta_neg, alpha

    def forward(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        return lse_pool(scores, self.beta_pos, self.beta_neg, self.alpha, mask=mask)

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
