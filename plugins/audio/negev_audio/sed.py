"""The DCASE sound event detection metrics, computed by the maintained library
``sed_scores_eval`` (Ebbers et al., ICASSP 2022; used by the DCASE task 4 baseline) from the
frame scores of the class maps.

* :func:`psds`: the polyphonic sound detection score (Bilen et al., ICASSP 2020), the normalised
  area under the PSD-ROC up to an effective false positive rate of 100 per hour, computed exactly
  over every threshold of the score curves. The two DCASE scenarios (task 4, 2021-2024):
  PSDS1 (``dtc = gtc = 0.7``, ``alpha_st = 1``: fine onsets and offsets) and PSDS2
  (``dtc = gtc = 0.1``, ``cttc = 0.3``, ``alpha_ct = 0.5``, ``alpha_st = 1``: which class,
  cross-triggers penalised).
* :func:`collar_f1`: event-based F1 (Mesaros et al., 2016, as in sed_eval): runs of active frames
  are events; an estimated event matches a reference event of its class when its onset is within
  200 ms and its offset within max(200 ms, 20 % of the event's length); one-to-one matching;
  F1 per class, macro-averaged over the classes (DCASE's reported figure), and micro-averaged.

Frame ``f`` of a clip covers ``[t_f - hop / 2, t_f + hop / 2]`` around its centre ``t_f``, the
first one from 0 s and the last one to the clip's end. Overlapping reference events of one class
are merged into one (:func:`merge_events`), and classes without any reference event are left
out, as the library requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "PSDS1",
    "PSDS2",
    "collar_f1",
    "frame_timestamps",
    "merge_events",
    "psds",
    "score_frames",
]

PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "alpha_ct": 0.0, "alpha_st": 1.0}
PSDS2 = {
    "dtc_threshold": 0.1,
    "gtc_threshold": 0.1,
    "cttc_threshold": 0.3,
    "alpha_ct": 0.5,
    "alpha_st": 1.0,
}

Event = tuple[int, float, float]  # (class, onset s, offset s)


def frame_timestamps(
    frames: int, frame_seconds: float, duration: float, first_frame: float = 0.0
) -> np.ndarray:
    """(frames + 1,) frame boundaries in seconds: midway between frame centres, 0 and
    ``duration`` at the ends (``sed_scores_eval``'s ``timestamps``; a last frame past the end
    keeps its own end)."""
    edges = first_frame + (np.arange(frames + 1) - 0.5) * frame_seconds
    edges[0], edges[-1] = 0.0, max(duration, edges[-2] + 1e-6)
    return edges


def score_frames(
    scores: Sequence[np.ndarray],
    classes: Sequence[str],
    frame_seconds: float,
    durations: Sequence[float],
    first_frame: float = 0.0,
) -> dict:
    """Per clip (named ``"0"``, ``"1"``, ...) the ``sed_scores_eval`` score DataFrame of its
    (C, F) frame scores."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    frames = {}
    for i, (values, duration) in enumerate(zip(scores, durations, strict=True)):
        values = np.asarray(values, dtype=np.float64)
        edges = frame_timestamps(values.shape[1], frame_seconds, duration, first_frame)
        frames[str(i)] = create_score_dataframe(values.T, edges, list(classes))
    return frames


def merge_events(events: Sequence[Event]) -> list[Event]:
    """One clip's events with the overlapping or touching events of each class merged into one
    (``sed_scores_eval`` refuses them; the time a class is active is unchanged)."""
    merged: list[list] = []
    for c, onset, offset in sorted(events):
        if merged and merged[-1][0] == c and onset <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], offset)
        else:
            merged.append([c, onset, offset])
    return [(c, float(on), float(off)) for c, on, off in merged]


def _library_inputs(
    values: Sequence[np.ndarray],
    events: Sequence[Sequence[Event]],
    durations: Sequence[float],
    classes: Sequence[str],
    frame_seconds: float,
    first_frame: float,
) -> tuple[dict, dict]:
    """Score DataFrames and reference events of the classes that have a reference event (the
    library refuses a class without one)."""
    kept = sorted({c for clip in events for c, _, _ in clip})
    names = [classes[c] for c in kept]
    frames = score_frames([np.asarray(v)[kept] for v in values], names, frame_seconds, durations,
                          first_frame)  # fmt: skip
    truth = {
        str(i): [(on, off, classes[c]) for c, on, off in merge_events(clip)]
        for i, clip in enumerate(events)
    }
    return frames, truth


def psds(
    scores: Sequence[np.ndarray],
    events: Sequence[Sequence[Event]],
    durations: Sequence[float],
    classes: Sequence[str],
    frame_seconds: float,
    first_frame: float = 0.0,
    scenario: dict | None = None,
    max_efpr: float = 100.0,
) -> float:
    """PSDS of frame scores (any monotone scale: the curve sweeps every threshold).

    Args:
        scores: per clip, (C, F) float frame scores. events: per clip, its reference events
            (class, onset s, offset s). durations: clip lengths in s. classes: class names.
        frame_seconds: frame hop; first_frame: centre of frame 0 (s). scenario: :data:`PSDS1`
            (default) or :data:`PSDS2`. max_efpr: per hour.

    Returns:
        PSDS in [0, 1] (NaN when no reference event exists).
    """
    from sed_scores_eval import intersection_based

    if not any(len(clip) for clip in events):
        return float("nan")
    frames, truth = _library_inputs(scores, events, durations, classes, frame_seconds, first_frame)
    scenario = dict(scenario or PSDS1)
    if len(next(iter(frames.values())).columns) - 2 < 2:  # (onset, offset, classes): one class
        scenario.pop("cttc_threshold", None)  # has nothing to cross-trigger (and the library
        scenario["alpha_ct"] = 0.0  # fails on it)
    value, *_ = intersection_based.psds(
        frames,
        truth,
        {str(i): float(d) for i, d in enumerate(durations)},
        **scenario,
        max_efpr=max_efpr,
    )
    return float(value)


def collar_f1(
    active: Sequence[np.ndarray],
    events: Sequence[Sequence[Event]],
    durations: Sequence[float],
    classes: Sequence[str],
    frame_seconds: float,
    first_frame: float = 0.0,
    collar: float = 0.2,
    offset_rate: float = 0.2,
) -> dict[str, float]:
    """Event-based F1 with collars of the events formed by runs of active frames.

    Args:
        active: per clip, (C, F) bool frame activity. The others as in :func:`psds`; collar (s)
            and offset_rate as DCASE's.

    Returns:
        ``{"collar_f1": macro F1 over the classes with a reference event, "collar_f1_micro":
        F1 of their pooled counts}`` (NaN without any reference event).
    """
    from sed_scores_eval import collar_based

    if not any(len(clip) for clip in events):
        return {"collar_f1": float("nan"), "collar_f1_micro": float("nan")}
    binary = [np.asarray(a, dtype=np.float64) for a in active]
    frames, truth = _library_inputs(binary, events, durations, classes, frame_seconds, first_frame)
    f, _, _, stats = collar_based.fscore(
        frames,
        truth,
        0.5,
        onset_collar=collar,
        offset_collar=collar,
        offset_collar_rate=offset_rate,
    )
    return {
        "collar_f1": float(f["macro_average"]),
        "collar_f1_micro": float(f["micro_average"]),
    }
