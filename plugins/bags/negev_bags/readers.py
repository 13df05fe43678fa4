"""Readers of bag collections: a CSV listing bag files, or one table of instances (Musk layout).

Labels: ``|`` separates the classes of a multi-label bag. When every bag has exactly one label the
data is multi-class (cross-entropy, accuracy), except that a ``negative`` label (option; ``0``
when the labels are exactly ``0`` and ``1``) means "no class": the data is then multi-label with
the other classes (a binary MIL task has one class, scored by ROC-AUC and AP).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from negev.plugins import BadItem, DataSplits, Example
from negev.plugins.manifest import SPLITS, _names
from negev.plugins.tables import read_csv_records, read_csv_rows
from negev_bags.bags import MAX_INSTANCES, Bag, check_bag, read_bag

__all__ = ["label_scheme", "read_bag_csv", "read_mil_table"]


def label_scheme(
    labels: list[list[str]], classes: list[str] | None, negative: str | None
) -> tuple[list[str], bool, str | None]:
    """(classes, multilabel, negative) for the label lists of the bags (see the module doc)."""
    found = sorted({n for names in labels for n in names})
    if negative is None and set(found) == {"0", "1"}:
        negative = "0"
    if classes is None:
        classes = [n for n in found if n != negative]
    multilabel = negative is not None or any(len(names) != 1 for names in labels)
    return list(classes), multilabel, negative


def _labels(names: list[str], classes: list[str], negative: str | None) -> tuple[int, ...] | str:
    """Class indices of a bag, or the reason they are unusable."""
    kept = [n for n in names if n != negative]
    outside = [n for n in kept if n not in classes]
    if outside:
        known = ", ".join(classes + ([negative] if negative else []))
        return f"unknown label {outside[0]!r} (labels: {known})"
    if negative in names and kept:
        return f"label {negative!r} (no class) given with {', '.join(kept)}"
    return tuple(sorted({classes.index(n) for n in kept}))


def read_bag_csv(
    path: str | Path,
    *,
    classes: list[str] | None = None,
    negative: str | None = None,
    width: int | None = None,
    seed: int = 0,
    max_instances: int = MAX_INSTANCES,
    labelled: bool = True,
) -> DataSplits:
    """Bags listed by a CSV ``bag,label[,split]`` (``path`` / ``labels`` are accepted too): ``bag``
    is a ``.pt`` / ``.npy`` / ``.h5`` file relative to the CSV's folder (or absolute).
    ``labelled=False`` (prediction): the label and split columns are not read (they may be
    missing).

    Every file is read once here to check it: a missing or unreadable file, an empty bag, a
    feature width other than ``width`` (default: the first good bag's), NaN or infinite features,
    an unknown label or split and a file listed twice are :class:`~negev.plugins.BadItem` s named
    ``<csv>:<line> (<bag>)``. The examples keep only the path (and the size): features are read
    again when batched, so a collection larger than memory works.

    Raises:
        ValueError: the CSV has no rows, or no bag / label column.
    """
    path = Path(path)
    table = read_csv_rows(path)
    if not table.rows and not table.bad:
        raise ValueError(f"{path}: no rows")
    header = table.header
    bag_key = "bag" if "bag" in header else "path" if "path" in header else None
    label_key = "label" if "label" in header else "labels" if "labels" in header else None
    if bag_key is None or (label_key is None and labelled):
        raise ValueError(
            f"{path}: needs the columns bag,label[,split] (found: {', '.join(header)})"
        )
    has_split = labelled and "split" in header  # prediction reads every bag, whatever its split
    label_lists = [_names(row[label_key]) if labelled else [] for _, row in table.rows]
    classes, multilabel, negative = label_scheme(label_lists, classes, negative)
    bad: list[BadItem] = table.bad
    examples: list[tuple[str | None, Example]] = []
    first_line: dict[Path, int] = {}
    for (line, row), names in zip(table.rows, label_lists, strict=True):
        cell = row[bag_key].strip()
        name = f"{path.name}:{line} ({cell})"
        labels = _labels(names, classes, negative)
        written = (row.get("split") or "").strip()
        split = written.lower() if has_split else None
        file = Path(cell)
        file = file if file.is_absolute() else path.parent / file
        if not cell:
            bad.append(BadItem(name, "no bag file named"))
            continue
        if isinstance(labels, str):
            bad.append(BadItem(name, labels))
            continue
        if not multilabel and len(labels) != 1:
            bad.append(BadItem(name, "no label"))
            continue
        if has_split and split not in SPLITS:
            bad.append(BadItem(name, f"split must be train, val or test, got {written!r}"))
            continue
        if file in first_line:
            bad.append(BadItem(name, f"listed again (first at line {first_line[file]})"))
            continue
        first_line[file] = line
        try:
            features, coords = read_bag(file)
        except ValueError as error:
            bad.append(BadItem(name, str(error).removeprefix(f"{file.name}: ")))
            continue
        problem = check_bag(features, width, max_instances)
        if problem:
            bad.append(BadItem(name, problem))
            continue
        width = features.shape[1]
        bag = Bag(path=file, size=features.shape[0])
        truth = {"has_coords": coords is not None}
        examples.append((split, Example(name, bag, labels, truth)))
    return DataSplits.grouped(examples, classes, multilabel, bad, seed)


def read_mil_table(
    path: str | Path,
    *,
    bag_column: int | str = 0,
    label_column: int | str = 1,
    classes: list[str] | None = None,
    negative: str | None = None,
    seed: int = 0,
    max_instances: int = MAX_INSTANCES,
) -> DataSplits:
    """The classic MIL table (Musk, Elephant, UCSB breast cancer): one row per instance with its
    bag id, the bag's label and the feature columns (every other column).

    ``bag_column`` / ``label_column`` are column indices, or names when the first row is a header
    (detected: a cell of the feature columns that is not a number). The ``mil`` package's CSVs have
    the label first: ``bag_column=1, label_column=0``. Bags keep the order of first appearance.
    Bad bags: rows that disagree on the label, a row of another width, a cell that is not a
    number, NaN features, an unknown label; they are named ``<csv>: bag <id>``.
    """
    path = Path(path)
    records, unreadable = read_csv_records(path)
    if not records:
        raise ValueError(f"{path}: no rows")
    header = None
    first = records[0][1]
    if isinstance(bag_column, str) or isinstance(label_column, str) or not _numeric(first):
        header, records = first, records[1:]
    columns = [_column(c, header, path) for c in (bag_column, label_column)]
    if columns[0] == columns[1]:
        raise ValueError(f"{path}: the bag and label columns are the same column")
    width = len(records[0][1]) - 2 if records else 0
    if width < 1:
        raise ValueError(f"{path}: no feature column besides the bag and label columns")
    order: list[str] = []
    grouped: dict[str, list[tuple[int, list[str]]]] = {}
    for line, row in records:
        if len(row) <= max(columns):
            reason = f"{len(row)} fields: no bag or label column (columns {columns[0] + 1}, "
            unreadable.append(BadItem(f"{path.name}:{line}", f"{reason}{columns[1] + 1})"))
            continue
        key = row[columns[0]].strip()
        if key not in grouped:
            order.append(key)
            grouped[key] = []
        grouped[key].append((line, row))
    label_lists = [_names(grouped[key][0][1][columns[1]]) for key in order]
    classes, multilabel, negative = label_scheme(label_lists, classes, negative)
    keep = [i for i in range(width + 2) if i not in columns]
    bad: list[BadItem] = unreadable
    examples: list[tuple[str | None, Example]] = []
    for key, names in zip(order, label_lists, strict=True):
        name = f"{path.name}: bag {key}"
        lines = grouped[key]
        reason = None
        if any(_names(row[columns[1]]) != names for _, row in lines):
            reason = "its rows disagree on the label"
        elif any(len(row) != width + 2 for _, row in lines):
            line, row = next((line, row) for line, row in lines if len(row) != width + 2)
            reason = f"line {line} has {len(row)} columns, expected {width + 2}"
        labels = _labels(names, classes, negative)
        if reason is None and isinstance(labels, str):
            reason = labels
        if reason is None:
            try:
                values = np.array([[float(row[i]) for i in keep] for _, row in lines])
            except ValueError as error:
                reason = f"a cell is not a number ({error})"
        if reason is None:
            features = torch.as_tensor(values, dtype=torch.float32)
            reason = check_bag(features, width, max_instances)
        if reason is not None:
            bad.append(BadItem(name, reason))
            continue
        examples.append((None, Example(name, Bag(features, size=len(features)), labels)))
    return DataSplits.grouped(examples, classes, multilabel, bad, seed)


def _numeric(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row[2:]]
    except ValueError:
        return False
    return True


def _column(column: int | str, header: list[str] | None, path: Path) -> int:
    if isinstance(column, str) and not column.isdigit():
        if header is None or column not in header:
            raise ValueError(f"{path}: no column named {column!r}")
        return header.index(column)
    return int(column)
