"""Audio datasets: a manifest CSV of ``path,labels[,events][,split]``.

``labels`` are ``|``-separated class names (empty: no event); ``events``, optional and used for
evaluation only, are ``|``-separated ``class@onset-offset`` in seconds
(``dog@0.5-1.25|siren@2-4.1``). An optional ``split`` column (train / val / test) fixes the
splits; otherwise they are cut 70/15/15 by seed.
"""

from __future__ import annotations

from pathlib import Path

from negev.plugins import BadItem, DataSplits, Example
from negev.plugins.manifest import read_manifest
from negev_audio.clips import MAX_SECONDS, check_clip

__all__ = ["check_events", "parse_events", "read_csv"]

END_TOLERANCE = 0.05  # s: an offset this far past the clip's end is rounding, cut to the end


def parse_events(text: str, classes: list[str]) -> list[tuple[int, float, float]]:
    """``"dog@0.5-1.25|siren@2-4.1"`` -> [(class index, onset, offset)]; raises ValueError."""
    events = []
    for item in filter(None, (part.strip() for part in text.split("|"))):
        name, at, span = item.partition("@")
        onset, dash, offset = span.partition("-")
        if not at or not dash:
            raise ValueError(f"event {item!r} is not class@onset-offset")
        if name.strip() not in classes:
            raise ValueError(f"event {item!r} has unknown label {name.strip()!r}")
        try:
            start, end = float(onset), float(offset)
        except ValueError:
            raise ValueError(f"event {item!r} has a non-numeric time") from None
        if not 0 <= start < end:
            raise ValueError(f"event {item!r} needs 0 <= onset < offset")
        events.append((classes.index(name.strip()), start, end))
    return events


def check_events(
    events: list[tuple[int, float, float]],
    labels: tuple[int, ...],
    duration: float,
    classes: list[str],
) -> list[tuple[int, float, float]]:
    """Check a clip's events against its ``labels`` and its ``duration`` (s): every event's
    class must be among the labels, and every event must lie in the clip (an offset at most
    ``END_TOLERANCE`` past the end is cut to the end). Returns the events; raises ValueError."""
    checked = []
    for c, start, end in events:
        event = f"{classes[c]}@{start:g}-{end:g}"
        if c not in labels:
            raise ValueError(f"event {event!r} is of a class the labels do not list")
        if start >= duration or end > duration + END_TOLERANCE:
            raise ValueError(f"event {event!r} ends after the clip ({duration:.3f} s)")
        checked.append((c, start, min(end, duration)))
    return checked


def read_csv(
    path: str | Path,
    sample_rate: int,
    classes: list[str] | None = None,
    seed: int = 0,
    min_samples: int = 1,
    max_seconds: float = MAX_SECONDS,
    labelled: bool = True,
) -> DataSplits:
    """Read the manifest CSV at ``path`` (:mod:`negev.plugins.manifest`); every clip is decoded
    once to check it (unreadable, empty, too short, too long or silent clips, unknown labels,
    malformed events, events past the clip's end or of a class the labels omit become
    :class:`BadItem` s named by line and file). ``labelled=False`` (prediction): neither the
    labels nor the events are read."""
    manifest = read_manifest(path, classes, labelled=labelled)
    examples = []
    for row in manifest.rows:
        cell = row.fields.get("events") if labelled else None
        try:
            events = parse_events(cell or "", manifest.classes)
            duration = check_clip(row.file, sample_rate, min_samples, max_seconds)
            events = check_events(events, row.labels, duration, manifest.classes)
        except ValueError as exc:  # the row names the file: drop the reader's path prefix
            manifest.bad.append(BadItem(row.name, str(exc).removeprefix(f"{row.file}: ")))
            continue
        truth = {"events": events, "duration": duration} if cell else {}
        examples.append((row, Example(str(row.file), str(row.file), row.labels, truth)))
    return manifest.splits(examples, seed)
