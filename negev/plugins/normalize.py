"""Per-channel standardisation fitted on the training data: ``(x - mean) / std`` per channel.

Plugins fit it in ``fit_state`` (the statistics go into the checkpoint as JSON) and apply it in
``load_item`` or in the encoder. Sums are taken in float64 over every value of the given tensors,
so the statistics do not depend on how the data is chunked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["ChannelStats"]


@dataclass(frozen=True)
class ChannelStats:
    """Mean and standard deviation of each channel (a std below ``1e-8`` is taken as 1)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, tensors: Iterable[Tensor], channel_dim: int = 0) -> ChannelStats:
        """Statistics over ``tensors`` (each with the channels along ``channel_dim``, e.g.
        (C, T) signals with 0, (N, d) instance features with -1)."""
        total = square = None
        count = 0
        for tensor in tensors:
            values = tensor.movedim(channel_dim, 0).reshape(tensor.shape[channel_dim], -1)
            values = values.double()
            if total is None:
                total = torch.zeros(len(values), dtype=torch.float64)
                square = torch.zeros_like(total)
            total += values.sum(1)
            square += values.square().sum(1)
            count += values.shape[1]
        if total is None or count == 0:
            raise ValueError("no value to fit the channel statistics on")
        mean = total / count
        std = (square / count - mean.square()).clamp(min=0).sqrt()
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    def apply(self, tensor: Tensor, channel_dim: int = 0) -> Tensor:
        """``(tensor - mean) / std`` per channel, channels along ``channel_dim``; float32."""
        shape = [1] * tensor.dim()
        shape[channel_dim] = len(self.mean)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=tensor.device).view(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=tensor.device).view(shape)
        return (tensor.float() - mean) / std

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``fit_state``)."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ChannelStats:
        return cls(tuple(state["mean"]), tuple(state["std"]))
