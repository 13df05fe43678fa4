"""CSV files of datasets, read once for every plugin: each record with its line number, and the
records that cannot be used as :class:`~negev.plugins.BadItem` s instead of an error that names
no line.

The file is UTF-8, with or without a byte-order mark. A record holding bytes that are not UTF-8,
or a field longer than :data:`FIELD_LIMIT` characters (or the reader's ``field_limit``), or that
the csv module rejects, is a bad item ``<file>:<line>`` saying which column; the records after it
are read as usual. A header that cannot be read, or that names a column twice, is an error naming
the file and line; so is a file of another format (compressed, a spreadsheet, Parquet, UTF-16:
:func:`text_bytes`). A quote that is never closed would make the rest of the file one field: its
record is a bad item, and the lines after its first are read as records.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negev.plugins.base import BadItem

__all__ = [
    "FIELD_LIMIT",
    "ENCODING_HINT",
    "ID_COLUMNS",
    "CsvRows",
    "check_split_column",
    "data_file",
    "item_name",
    "read_csv_records",
    "read_csv_rows",
    "repeated",
    "text_bytes",
]

#: Longest field, in characters: the csv module's own default limit (128 KiB), here a bad record
#: rather than an error that ends the file.
FIELD_LIMIT = 131_072


def data_file(path: Path) -> Path:
    """``path``, a data file to read.

    Raises:
        FileNotFoundError: naming it, when it does not exist or is a directory.
    """
    if not path.is_file():
        why = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"data file {path} {why}")
    return path


#: Said of a byte that is not UTF-8: the usual cause.
ENCODING_HINT = "(a file saved as Latin-1 or Windows-1252? negev reads UTF-8: re-save it as UTF-8)"

#: Leading bytes of file formats that are not text, and what to do about each.
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (unxz)"),
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one)", "export or extract it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook", "save it as CSV (UTF-8)"),
    (b"PAR1", "a Parquet file", "write it as CSV"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
)


def text_bytes(path: Path) -> bytes:
    """The bytes of a text data file (CSV, JSONL), read once.

    Raises:
        ValueError: naming the file and its format, when it starts as a compressed file, a
            spreadsheet, Parquet or UTF-16 text does: negev reads UTF-8 text.
    """
    data = path.read_bytes()
    for magic, kind, fix in _NOT_TEXT:
        if data.startswith(magic) and _is_format(magic, data):
            raise ValueError(f"{path}: {kind}, not UTF-8 text: {fix}")
    return data


def _is_format(magic: bytes, data: bytes) -> bool:
    """The rest of a format's signature, where its first bytes could start a CSV header
    (``PAR1,...``, ``BZh...``): Parquet ends as it starts, bzip2 goes on with its level and the
    block magic."""
    if magic == b"PAR1":
        return len(data) >= 8 and data.endswith(b"PAR1")
    if magic == b"BZh":
        return len(data) >= 10 and data[3:4] in b"123456789" and data[4:10] == b"1AY&SY"
    return True


#: Columns (any case) whose value names an item: shown beside its line, ``data.csv:12 (CHEMBL25)``,
#: so that predictions and bad items can be matched to the user's own identifiers.
ID_COLUMNS = ("id", "name", "_name")


def item_name(where: str, row: Mapping[str, Any]) -> str:
    """``where`` (``<file>:<line>``) and the item's identifier when ``row`` has a non-empty
    :data:`ID_COLUMNS` cell (the first such column; up to 60 characters)."""
    for key, value in row.items():
        if str(key).strip().lower() in ID_COLUMNS and value is not None and str(value).strip():
            return f"{where} ({' '.join(str(value).split())[:60]})"  # on one line
    return where


def repeated(names: list[str]) -> list[str]:
    """The non-empty names ``names`` holds more than once, sorted: columns or keys of which the
    one holding the data would be a guess."""
    return sorted({name for name in names if name and names.count(name) > 1})


def check_split_column(column: str, default: str, columns: list[str], path: Path) -> None:
    """The column that fixes the items' splits where the data has it (option
    ``split_column``): one named otherwise than the ``default`` must be among ``columns`` (in
    the order shown), not silently replaced by a random split.

    Raises:
        ValueError: naming the file, the column and the columns there are.
    """
    if column not in columns and column != default:
        raise ValueError(
            f"{path}: no split column {column!r} (columns: {', '.join(columns)}); drop "
            "split_column to cut the items 70/15/15 by the seed"
        )


def _records(path: Path) -> Iterator[tuple[int, list[str] | str]]:
    """``(first line, cells)`` per record of ``path`` that is not an empty line (see
    :func:`_blank` for a row of empty cells), or ``(line, reason)`` for a record the csv module
    rejects, or one whose quote is never closed (which would swallow the
    rest of the file as one field: the lines after its first are read again as records).
    Undecodable bytes travel as surrogates (``surrogateescape``), for :func:`_problem` to find
    per record, so that one bad byte names its line instead of ending the file."""
    text = text_bytes(path).decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    lines = io.StringIO(text, newline="").readlines()
    previous = csv.field_size_limit(sys.maxsize)  # the limit is checked per record
    try:
        offset: int | None = 0
        while offset is not None:
            offset = yield from _parse(lines, offset)
    finally:
        csv.field_size_limit(previous)


def _parse(
    lines: list[str], offset: int
) -> Generator[tuple[int, list[str] | str], None, int | None]:
    """The records of ``lines[offset:]`` as :func:`_records` yields them (lines numbered in the
    whole file); returns the offset to read again from after a never-closed quote, else None."""
    reader = csv.reader(iter(lines[offset:]))
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            yield offset + start, f"not valid CSV ({exc})"
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if offset + reader.line_num == len(lines) and _unclosed(lines[offset + line - 1 :]):
            yield offset + line, (
                "a quote opened in the record starting at this line is never closed, so the "
                "rest of the file would be one field: close or remove it (the lines after this "
                "one are read as rows)"
            )  # fmt: skip
            return offset + line
        if cells:  # an empty line is no record; a row of empty cells is judged by the caller
            yield offset + line, cells


def _unclosed(lines: list[str]) -> bool:
    """Whether the first record of ``lines`` opens a quote that the end of ``lines`` leaves
    open: a closing quote on a line of its own after them is then part of that record."""
    reader = csv.reader(iter([*lines, '"\n']))
    next(reader)
    return reader.line_num > len(lines)


def _blank(cells: list[str], width: int) -> bool:
    """A row of empty (or space) cells, as a spreadsheet's blank row ``,,``, in a table of
    ``width`` columns (0: unknown): blank, unless the table has one column, where ``""`` or
    spaces are that column's empty value (an empty text, a missing SMILES: a bad row)."""
    return width != 1 and not any(cell.strip() for cell in cells)


def _problem(cells: list[str], field_limit: int | None, header: list[str]) -> str | None:
    """Why a record's cells cannot be used (undecodable bytes, a field over the limit), or None;
    a cell is named by its ``header`` column where there is one, else by its field number."""
    for index, cell in enumerate(cells):
        named = index < len(header) and header[index]
        where = f"column {header[index]!r}" if named else f"field {index + 1}"
        if field_limit is not None and len(cell) > field_limit:
            return f"{where} has {len(cell)} characters, over the limit of {field_limit}"
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as exc:
            byte = ord(cell[exc.start]) - 0xDC00
            return f"not UTF-8: byte 0x{byte:02x} in {where} {ENCODING_HINT}"
    return None


def read_csv_records(
    path: str | Path, field_limit: int | None = FIELD_LIMIT
) -> tuple[list[tuple[int, list[str]]], list[BadItem]]:
    """Every non-blank record of the CSV at ``path`` as ``(line, cells)`` (``line``: where the
    record starts, 1-based), and the unusable records as bad items ``<file name>:<line>``
    (``field_limit``: the longest field, in characters; None: no limit).

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    rows, bad = [], []
    for line, cells in _records(path):
        if not isinstance(cells, str) and _blank(cells, 0):
            continue
        problem = cells if isinstance(cells, str) else _problem(cells, field_limit, [])
        if problem:
            bad.append(BadItem(f"{path.name}:{line}", problem))
        else:
            rows.append((line, cells))
    return rows, bad


@dataclass
class CsvRows:
    """A CSV with a header: its columns, each usable record as ``(line, {column: cell})`` (a
    missing cell is ``""``), and the bad records. A record with more non-empty cells than the
    header has columns is bad."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    bad: list[BadItem] = field(default_factory=list)


def read_csv_rows(path: str | Path, field_limit: int | None = FIELD_LIMIT) -> CsvRows:
    """The CSV at ``path`` read against its first record, the header (names stripped); an
    empty file gives an empty header and no rows. ``field_limit``: the longest field, in
    characters (a longer one makes its record bad; None: no limit, the caller checks its own).

    Raises:
        ValueError: naming the file and line, when the header itself cannot be read or names a
            column twice.
    """
    path = Path(path)
    table = CsvRows([], [])
    for line, cells in _records(path):
        name = f"{path.name}:{line}"
        if not isinstance(cells, str):
            if _blank(cells, len(table.header)):
                continue
            cells = _problem(cells, field_limit, table.header) or cells
        if not table.header:
            if isinstance(cells, str):
                raise ValueError(f"{path}:{line}: the header is unusable: {cells}")
            table.header = [column.strip() for column in cells]
            if len(cells) == 1 and any(sep in cells[0] for sep in "\t;"):
                raise ValueError(
                    f"{path}:{line}: the header is one column, {cells[0]!r}: the file looks "
                    "tab- or semicolon-separated; negev reads comma-separated CSV"
                )
            twice = repeated(table.header)
            if twice:
                raise ValueError(
                    f"{path}:{line}: the header names column(s) {', '.join(map(repr, twice))} "
                    "more than once; which one holds the data would be a guess: rename them"
                )
            continue
        width = len(table.header)
        extra = [] if isinstance(cells, str) else [c for c in cells[width:] if c.strip()]
        if isinstance(cells, str):
            table.bad.append(BadItem(name, cells))
        elif extra:
            reason = f"{len(cells)} fields, the header has {width} ({extra[0][:40]!r} past it)"
            table.bad.append(BadItem(name, reason))
        else:
            padded = cells[:width] + [""] * (width - len(cells))
            table.rows.append((line, dict(zip(table.header, padded, strict=True))))
    return table
