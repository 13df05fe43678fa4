"""File manifests: a CSV that lists files with their weak labels, for file-based modalities.

Columns: ``path`` (relative to the CSV's folder, or absolute), ``labels`` (``|``-separated class
names; empty = no class present) and optionally ``split`` (train / val / test) and any column a
plugin reads itself (``events`` for audio, ...). Rows with a label outside the class list, an
unknown split, or a file listed by an earlier row are :class:`~negev.plugins.BadItem` s named
``<csv>:<line> (<path>)``, as are the records the CSV reader cannot use
(:mod:`negev.plugins.tables`: undecodable bytes, an over-long field); checking the files
themselves is the plugin's part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from negev.plugins.base import BadItem, DataSplits, Example
from negev.plugins.tables import read_csv_rows

__all__ = ["Manifest", "ManifestRow", "read_manifest", "split_value"]

SPLITS = ("train", "val", "test")


def split_value(cell: object, column: str) -> str:
    """The split a data file's ``column`` names for an item: ``train``, ``val`` or ``test``,
    in any case, spaces around.

    Raises:
        ValueError: naming the value as written and the column.
    """
    written = str(cell or "").strip()
    if written.lower() not in SPLITS:
        raise ValueError(
            f"split {written!r} in column {column!r} is not one of {', '.join(SPLITS)}"
        )
    return written.lower()


@dataclass
class ManifestRow:
    """One usable row: ``name`` for messages, the resolved ``file``, class indices, its split
    (``"all"`` when the manifest has no split column) and the raw ``fields``."""

    name: str
    file: Path
    labels: tuple[int, ...]
    split: str
    fields: dict[str, str]


@dataclass
class Manifest:
    """The rows of a manifest that passed the label and split checks, the bad ones, the class
    list and whether the CSV fixes the splits."""

    rows: list[ManifestRow]
    classes: list[str]
    has_split: bool
    bad: list[BadItem] = field(default_factory=list)

    def splits(self, examples: list[tuple[ManifestRow, Example]], seed: int = 0) -> DataSplits:
        """The plugin's examples (with the row each came from) as splits: the CSV's own, or cut
        70/15/15 by ``seed`` when it has no split column. ``bad`` goes along."""
        rows = [(row.split if self.has_split else None, e) for row, e in examples]
        return DataSplits.grouped(rows, self.classes, True, self.bad, seed)


def _names(cell: str | None) -> list[str]:
    return [name.strip() for name in (cell or "").split("|") if name.strip()]


def read_manifest(
    path: str | Path, classes: list[str] | None = None, *, labelled: bool = True
) -> Manifest:
    """Read a manifest CSV. ``classes`` fixes the class list (a label outside it makes a bad
    row); by default it is the sorted set of labels found. ``labelled=False`` (prediction): the
    ``labels`` and ``split`` columns are not read (they may be missing); no row has a label.

    Raises:
        ValueError: the file has no rows or lacks the ``path`` (or, labelled, ``labels``) column.
    """
    path = Path(path)
    table = read_csv_rows(path)
    rows = table.rows
    if not rows and not table.bad:
        raise ValueError(f"{path}: no rows")
    for column in ("path", "labels")[: 2 if labelled else 1]:
        if column not in table.header:
            raise ValueError(f"{path}: no {column!r} column (columns: {', '.join(table.header)})")
    found = {n for _, row in rows for n in _names(row["labels"])} if labelled else set()
    classes = list(classes) if classes else sorted(found)
    manifest = Manifest([], classes, labelled and "split" in table.header, table.bad)
    first_line: dict[Path, int] = {}
    for line, row in rows:
        name = f"{path.name}:{line} ({row['path']})"
        names = _names(row["labels"]) if labelled else []
        outside = [n for n in names if n not in classes]
        written = (row.get("split") or "").strip()
        split = written.lower() if manifest.has_split else "all"
        file = Path(row["path"])
        file = file if file.is_absolute() else path.parent / file
        if not row["path"].strip():
            manifest.bad.append(BadItem(name, "no file named (the path cell is empty)"))
        elif outside:
            reason = f"unknown label {outside[0]!r} (classes: {', '.join(classes)})"
            manifest.bad.append(BadItem(name, reason))
        elif manifest.has_split and split not in SPLITS:
            reason = f"split must be train, val or test, got {written!r}"
            manifest.bad.append(BadItem(name, reason))
        elif file in first_line:
            reason = f"listed again (first at line {first_line[file]})"
            manifest.bad.append(BadItem(name, reason))
        else:
            first_line[file] = line
            labels = tuple(sorted({classes.index(n) for n in names}))
            manifest.rows.append(ManifestRow(name, file, labels, split, row))
    return manifest
