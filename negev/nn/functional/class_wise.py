"""Class-wise pooling of WILDCAT: average the M maps of each class."""

from __future__ import annotations

from torch import Tensor

__all__ = ["class_wise_pool"]


def class_wise_pool(maps: Tensor, num_maps: int) -> Tensor:
    """Average the ``num_maps`` (M) modality maps of each class.

    ``z[b, c, h] = 1/M * sum_m maps[b, c*M + m, h]``: the maps of class c are the channels
    ``c*M ... c*M + M - 1``.

    Args:
        maps: (B, C*M, *regions) float.
        num_maps: M >= 1.

    Returns:
        (B, C, *regions), dtype and device of ``maps``.
    """
    if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 1:
        raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
    if maps.dim() < 2:
        raise ValueError(f"maps must have shape (B, C*M, *regions), got {tuple(maps.shape)}")
    channels = maps.shape[1]
    if channels % num_maps != 0:
        raise ValueError(
            f"maps has {channels} channels, not a multiple of num_maps={num_maps} "
            "(expected C*M channels)"
        )
    if num_maps == 1:
        return maps
    batch, regions = maps.shape[0], maps.shape[2:]
    return maps.reshape(batch, channels // num_maps, num_maps, *regions).mean(dim=2)
