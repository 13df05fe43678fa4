"""DESED (DCASE task 4) annotations -> the audio plugin's manifest CSV.

DESED ships tab-separated files with a header: strong labels ``filename onset offset
event_label`` (one line per event; a clip without events has empty onset, offset and label) and
weak labels ``filename event_labels`` (comma-separated class names). :func:`read_desed` reads one
of them (the kind from its header) into ``{filename: (labels, events)}``; :func:`write_manifest`
writes ``path,labels,events,split`` rows the plugin reads with ``--data``:

    python -m negev_audio.desed --out desed.csv \\
        --train weak.tsv:audio/train/weak --val validation.tsv:audio/validation ...
    negev train --modality audio --data desed.csv --set sample_rate=16000

A malformed line is an error naming the file and line; missing or unreadable audio files are
reported by the manifest reader as bad items, like any other.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

__all__ = ["read_desed", "write_manifest"]

Labels = tuple[list[str], list[tuple[str, float, float]]]


def read_desed(path: str | Path) -> dict[str, Labels]:
    """A DESED strong or weak tsv -> ``{filename: (sorted labels, [(label, onset, offset)])}``
    (strong files give both; weak files no events)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    strong = ["filename", "onset", "offset", "event_label"]
    if header[:4] == strong:
        kind = "strong"
    elif header[:2] == ["filename", "event_labels"]:
        kind = "weak"
    else:
        raise ValueError(
            f"{path}:1: header must be 'filename onset offset event_label' (strong) or "
            f"'filename event_labels' (weak), got {' '.join(header)!r}"
        )
    clips: dict[str, Labels] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}:{number}"
        name = row[0].strip()
        if not name:
            raise ValueError(f"{where}: empty filename")
        labels, events = clips.setdefault(name, ([], []))
        if kind == "weak":
            if len(row) < 2:
                raise ValueError(f"{where}: expected filename and event_labels")
            labels += [x.strip() for x in row[1].split(",") if x.strip()]
            continue
        if len(row) < 4:
            raise ValueError(f"{where}: expected 4 tab-separated fields, got {len(row)}")
        onset, offset, label = (v.strip() for v in row[1:4])
        if not (onset or offset or label):
            continue  # a clip without events
        try:
            start, end = float(onset), float(offset)
        except ValueError:
            raise ValueError(f"{where}: onset and offset must be numbers") from None
        if not label or not 0 <= start < end:
            raise ValueError(f"{where}: needs a label and 0 <= onset < offset")
        labels.append(label)
        events.append((label, start, end))
    return {name: (sorted(set(labels)), events) for name, (labels, events) in clips.items()}


def write_manifest(out: str | Path, parts: dict[str, list[tuple[str | Path, str | Path]]]) -> int:
    """Write the manifest CSV ``out`` from ``{split: [(tsv, audio folder), ...]}``; paths are
    written relative to the CSV's folder when they can be. Returns the number of rows."""
    out = Path(out)
    rows = []
    for split, sources in parts.items():
        for tsv, audio in sources:
            for name, (labels, events) in sorted(read_desed(tsv).items()):
                for text in (name, *labels):
                    if any(ch in text for ch in "|@"):
                        raise ValueError(f"{tsv}: {text!r}: '|' and '@' are not allowed in names")
                file = (Path(audio) / name).absolute()
                try:
                    file = file.relative_to(out.parent.absolute())
                except ValueError:
                    pass
                rows.append([
                    str(file),
                    "|".join(labels),
                    "|".join(f"{label}@{on:g}-{off:g}" for label, on, off in events),
                    split,
                ])  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "labels", "events", "split"])
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="DESED tsv files -> a negev audio manifest CSV")
    parser.add_argument("--out", required=True, type=Path)
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}", nargs="*", default=[], metavar="TSV:AUDIO_DIR")
    args = parser.parse_args()
    parts = {}
    for split in ("train", "val", "test"):
        pairs = []
        for item in getattr(args, split):
            tsv, sep, audio = item.rpartition(":")
            if not sep:
                parser.error(f"--{split} {item!r}: expected TSV:AUDIO_DIR")
            pairs.append((tsv, audio))
        if pairs:
            parts[split] = pairs
    print(f"wrote {write_manifest(args.out, parts)} clips to {args.out}")


if __name__ == "__main__":
    main()
