"""Sliding windows over 1-D sequences (signals, token streams) as regions.

A sequence of length L cut into windows of ``width`` samples every ``stride`` samples has
``window_count(L, width, stride) = max(1, (L - width) // stride + 1)`` windows; window w covers
samples ``[w * stride, w * stride + width)`` (a sequence shorter than ``width`` is one window, the
model pads it). This is the layout of ``Conv1d(kernel_size=width, stride=stride)`` without
padding, and of ``Tensor.unfold(-1, width, stride)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["span_windows", "window_count", "window_mask"]


def window_count(length: int, width: int, stride: int) -> int:
    """Windows of a sequence of ``length`` samples (at least one)."""
    if width < 1 or stride < 1:
        raise ValueError(f"width and stride must be >= 1, got {width} and {stride}")
    return max(1, (length - width) // stride + 1)


def window_mask(lengths: Tensor, width: int, stride: int, windows: int | None = None) -> Tensor:
    """Which windows of a padded batch are real.

    Args:
        lengths: (B,) int, the samples of each sequence.
        windows: the batch's window count (default: that of the longest sequence).

    Returns:
        (B, windows) bool, True for window w < ``window_count(lengths[b], width, stride)``.
    """
    counts = torch.tensor([window_count(int(n), width, stride) for n in lengths.tolist()])
    total = int(counts.max()) if windows is None else windows
    return torch.arange(total).unsqueeze(0) < counts.to(lengths.device).unsqueeze(1)


def span_windows(start: int, end: int, width: int, stride: int, length: int) -> list[int]:
    """The windows of a sequence of ``length`` samples that overlap the span ``[start, end)``
    (ground truth in samples -> ground truth in regions)."""
    count = window_count(length, width, stride)
    return [w for w in range(count) if w * stride < end and start < w * stride + width]
