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
from negev_audio.clips import check_clip

__all__ = ["parse_events", "read_csv"]


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


def read_csv(
    path: str | Path,
    sample_rate: int,
    classes: list[str] | None = None,
    seed: int = 0,
    min_samples: int = 1,
) -> DataSplits:
    """Read the manifest CSV at ``path`` (:mod:`negev.plugins.manifest`); every clip is decoded
    once to check it (unreadable, empty, too short or silent clips, unknown labels and malformed
    events become :class:`BadItem` s named by line and file)."""
    manifest = read_manifest(path, classes)
    examples = []
    for row in manifest.rows:
        try:
            events = parse_events(row.fields.get("events") or "", manifest.classes)
            duration = check_clip(row.file, sample_rate, min_samples)
        except ValueError as exc:  # the row names the file: drop the reader's path prefix
            manifest.bad.append(BadItem(row.name, str(exc).removeprefix(f"{row.file}: ")))
            continue
        truth = {"events": events, "duration": duration} if row.fields.get("events") else {}
        examples.append((row, Example(str(row.file), str(row.file), row.labels, truth)))
    return manifest.splits(examples, seed)
