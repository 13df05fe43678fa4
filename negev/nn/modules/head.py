"""The evidence head: region features -> class maps -> class scores."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negev.nn.modules.pooling import ClassWisePool, WildcatPool

__all__ = ["EvidenceHead", "EvidenceOutput"]


class EvidenceOutput(NamedTuple):
    """What :class:`EvidenceHead` returns.

    Attributes:
        scores: (B, C) pooled class scores (logits).
        maps: (B, C, *regions) class maps (region scores after class-wise pooling); masked regions
            hold unmasked values and must be ignored by the caller.
    """

    scores: Tensor
    maps: Tensor


class EvidenceHead(nn.Module):
    """1x1 projection to C*M maps, class-wise average over M and negative-evidence spatial pooling
    (the average before the pooling, or after it with ``pool_each_map``).

    Args:
        in_channels: D, the feature size of each region.
        num_classes: C.
        num_maps: M maps per class (WILDCAT's modalities); 1 for WELDON-style heads.
        pool: a pooling module ``(scores (B, C, *regions), mask) -> (B, C)``; default max+min
            (``WildcatPool(1, 1, 1.0)``). A pool with ``needs_attention = True``
            (:class:`~negev.nn.AttentionPool`, the MIL attention pools) also gets ``attention``
            (B, A, *regions) from a module over the features, ``attend``: the pool's
            ``attention_module(in_channels, P)`` ((..., D) -> (..., A)) where it has
            one, else a 1x1 projection to A = P attention logits, P = :attr:`pool_classes`. The
            head registers it, so its parameters train with the head's.
        pool_each_map: where the class-wise average goes. False (WILDCAT): on the maps,
            ``y_c = pool(mean_m z_cm)``, one pooling of each class's mean map. True: on the
            scores, ``y_c = mean_m pool(z_cm)``: each of the M maps is pooled on its own, with
            its own top / bottom regions, an ensemble of M detectors (one may learn the positive
            evidence, another the negative). The pool then sees C*M "classes"
            (:attr:`pool_classes`). Both are equal when the pooling is linear (average
            pooling) or M = 1; with a hard selection they differ, since the mean of M linear
            maps is one linear map.

    Under a pool whose linear term sums the regions (``LinearEvidencePool(linear="sum")``) with
    one bias per pooled row (its ``num_classes`` = :attr:`pool_classes`), the projection's bias
    is 0 and not trained (a bias on every region would add n * b, a region count, to the
    score); the pool's own bias is the class bias.

    ``forward(features (B, D, *regions), mask (B, *regions) bool | None) -> EvidenceOutput`` with
    scores (B, C) and maps (B, C, *regions). Any number of region dims: token windows (1-D),
    image cells (2-D), time-frequency patches.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_maps: int = 1,
        pool: nn.Module | None = None,
        pool_each_map: bool = False,
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(pool_each_map, bool):
            raise ValueError(f"pool_each_map must be True or False, got {pool_each_map!r}")
        self.proj = nn.Linear(in_channels, num_classes * num_maps)
        self.class_wise = ClassWisePool(num_maps)
        self.pool_each_map = pool_each_map
        #: the rows the pool scores: C, or C*M when each map is pooled on its own
        self.pool_classes = self.rows_pooled(num_classes, num_maps, pool_each_map)
        self.pool = WildcatPool(1, 1, 1.0) if pool is None else pool
        own_bias = getattr(self.pool, "bias", None)
        per_row = own_bias is not None and own_bias.numel() == self.pool_classes
        if getattr(self.pool, "linear_term", None) == "sum" and per_row:
            # Summed, a bias on every region is n * b: a region count, which the linear model
            # the pooling holds does not have, and which one optimizer step moves by lr * n (22
            # logits on a 1,100-window speech at lr 0.01). The pooling's own bias is the bias
            # (one per pooled row; a pool sharing one bias keeps the projection's for the rest).
            with torch.no_grad():
                self.proj.bias.zero_()
            self.proj.bias.requires_grad_(False)
        self.attend = _attention_module(self.pool, in_channels, self.pool_classes)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> EvidenceOutput:
        if features.dim() < 3 or features.shape[1] != self.proj.in_features:
            raise ValueError(
                f"features must have shape (B, {self.proj.in_features}, *regions), "
                f"got {tuple(features.shape)}"
            )
        maps = self._project(features)
        if self.attend is None:
            return self._pool(maps, None, mask)
        attention = self.attend(features.movedim(1, -1)).movedim(-1, 1)
        return self._pool(maps, attention, mask)

    def readout_layers(self) -> list[nn.Linear] | None:
        """The head's linear maps of each region's features, in readout order: ``proj`` (C * M
        outputs), then ``attend`` (A) when the pool takes attention; None when ``attend`` is not
        a plain linear map (an attention network), whose output cannot be concatenated."""
        if self.attend is None:
            return [self.proj]
        return [self.proj, self.attend] if type(self.attend) is nn.Linear else None

    def from_readout(self, readout: Tensor, mask: Tensor | None = None) -> EvidenceOutput:
        """The head on its readout: ``readout`` (B, K, *regions) holds the :meth:`readout_layers`
        outputs of every region, concatenated along dim 1 (an encoder that computes them itself,
        chunk by chunk, never holds the full (B, D, *regions) features)."""
        maps = readout[:, : self.proj.out_features]
        attention = None if self.attend is None else readout[:, self.proj.out_features :]
        return self._pool(maps, attention, mask)

    @staticmethod
    def rows_pooled(num_classes: int, num_maps: int, pool_each_map: bool) -> int:
        """The rows a head's pool scores (its :attr:`pool_classes`): C, or C*M when each map is
        pooled on its own; what a pool with per-class parameters is built for."""
        return num_classes * num_maps if pool_each_map else num_classes

    def selection(
        self, features: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """The regions the pooling keeps: (high, low) bool (B, C, *regions), with
        ``pool_each_map`` those some map of the class keeps; None for a pooling without a hard
        selection (no ``selection`` method). ``features`` as in :meth:`forward`."""
        select = getattr(self.pool, "selection", None)
        if select is None:
            return None
        maps = self._project(features)
        if not self.pool_each_map:
            return select(self.class_wise(maps), mask)
        shape = (maps.shape[0], -1, self.class_wise.num_maps, *maps.shape[2:])
        high, low = select(maps, mask)
        return high.reshape(shape).any(2), low.reshape(shape).any(2)

    def maps_tied(self) -> bool:
        """Whether every class's M > 1 maps have the same projection (weights and bias), as a
        linear warm start writes them."""
        maps = self.class_wise.num_maps
        if maps == 1:
            return False
        rows = torch.cat([self.proj.weight, self.proj.bias[:, None]], 1).detach()
        rows = rows.reshape(-1, maps, rows.shape[1])
        return bool((rows == rows[:, :1]).all())

    @torch.no_grad()
    def spread_maps(self, generator: torch.Generator | None = None) -> None:
        """Move each class's M maps apart around their mean: map m's weights ``w_c + e_cm``,
        with ``sum_m e_cm = 0`` (the mean map is unchanged, and with it any linear term of the
        maps) and ``mean_m ||e_cm||^2 = ||w_c||^2`` (w_c: the class's mean weights; a class at 0
        stays there). ``e`` is a uniform draw from ``generator`` (a CPU generator), centred over
        the maps and scaled, one factor per class; computed on the CPU in float64 (the same
        spread on any device). Nothing with one map."""
        maps = self.class_wise.num_maps
        if maps == 1:
            return
        weight = self.proj.weight.view(-1, maps, self.proj.in_features)
        rows = weight.detach().to("cpu", torch.float64)
        mean = rows.mean(1, keepdim=True)
        noise = torch.rand(rows.shape, generator=generator, dtype=torch.float64) - 0.5
        noise = noise - noise.mean(1, keepdim=True)
        spread = noise.square().sum(2, keepdim=True).mean(1, keepdim=True).sqrt()
        weight.copy_(mean + noise * (mean.norm(dim=2, keepdim=True) / spread))

    def _project(self, features: Tensor) -> Tensor:
        """(B, D, *regions) -> the C * M maps (B, C*M, *regions)."""
        return F.linear(features.movedim(1, -1), self.proj.weight, self.proj.bias).movedim(-1, 1)

    def _pool(self, maps: Tensor, attention: Tensor | None, mask: Tensor | None) -> EvidenceOutput:
        """Class-wise average of the C * M projected maps and the spatial pooling, in the order
        ``pool_each_map`` says."""
        if self.pool_each_map:
            return EvidenceOutput(
                self.class_wise(self._spatial(maps, attention, mask)), self.class_wise(maps)
            )
        maps = self.class_wise(maps)
        return EvidenceOutput(self._spatial(maps, attention, mask), maps)

    def _spatial(self, maps: Tensor, attention: Tensor | None, mask: Tensor | None) -> Tensor:
        if attention is None:
            return self.pool(maps, mask)
        return self.pool(maps, mask, attention=attention)


def _attention_module(pool: nn.Module, in_channels: int, num_classes: int) -> nn.Module | None:
    if not getattr(pool, "needs_attention", False):
        return None
    make = getattr(pool, "attention_module", None)
    return nn.Linear(in_channels, num_classes) if make is None else make(in_channels, num_classes)
