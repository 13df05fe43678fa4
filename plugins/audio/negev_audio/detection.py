"""Sound event detection from frame-level class maps, scored segment by segment.

:func:`segment_f1` is the segment-based metric of Mesaros et al. (2016, sed_eval) used in DCASE:
time is cut into fixed segments (1 s); a class is active in a segment, in the reference when an
event of it overlaps the segment, in the output when one of its active frames falls in it; true
positives, false positives and false negatives are summed over every (clip, segment, class), and
F1 = 2 TP / (2 TP + FP + FN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["reference_activity", "segment_activity", "segment_f1"]


def segment_activity(
    active: np.ndarray,
    frame_seconds: float,
    duration: float,
    segment: float = 1.0,
    first_frame: float = 0.0,
) -> np.ndarray:
    """(C, F) bool frame activity (frame f at time ``first_frame + f * frame_seconds``) ->
    (C, K) bool segment activity, K = ceil(duration / segment)."""
    count = max(1, math.ceil(duration / segment - 1e-9))
    out = np.zeros((active.shape[0], count), dtype=bool)
    for c, f in zip(*np.nonzero(active), strict=True):
        k = int((first_frame + f * frame_seconds) / segment)
        if k < count:
            out[c, k] = True
    return out


def reference_activity(
    events: Sequence[tuple[int, float, float]],
    num_classes: int,
    duration: float,
    segment: float = 1.0,
) -> np.ndarray:
    """(C, K) bool: segments overlapped by an event (onset, offset in seconds) of each class."""
    count = max(1, math.ceil(duration / segment - 1e-9))
    out = np.zeros((num_classes, count), dtype=bool)
    for c, onset, offset in events:
        first = int(onset // segment)
        last = math.ceil(offset / segment) - 1  # an event ending exactly on a boundary stops there
        out[c, max(first, 0) : min(last, count - 1) + 1] = True
    return out


def segment_f1(
    predicted: Sequence[np.ndarray],
    events: Sequence[Sequence[tuple[int, float, float]]],
    durations: Sequence[float],
    frame_seconds: float,
    segment: float = 1.0,
    first_frame: float = 0.0,
) -> dict[str, float]:
    """Segment-based F1, precision and recall over all clips.

    Args:
        predicted: per clip, (C, F) bool frame activity. events: per clip, the reference events
            (class, onset s, offset s). durations: clip lengths in s. frame_seconds: frame hop;
            first_frame: time of frame 0 (the centre of the first analysis window).

    Returns:
        {"segment_f1", "segment_precision", "segment_recall"} (NaN where undefined).
    """
    tp = fp = fn = 0
    for active, clip_events, duration in zip(predicted, events, durations, strict=True):
        out = segment_activity(active, frame_seconds, duration, segment, first_frame)
        ref = reference_activity(clip_events, active.shape[0], duration, segment)
        tp += int((out & ref).sum())
        fp += int((out & ~ref).sum())
        fn += int((~out & ref).sum())
    nan = float("nan")
    return {
        "segment_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan,
        "segment_precision": tp / (tp + fp) if tp + fp else nan,
        "segment_recall": tp / (tp + fn) if tp + fn else nan,
    }
