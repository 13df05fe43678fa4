"""Small helpers that plugins share to render evidence for people."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from negev.files import atomic_write, safe_name

__all__ = ["UniqueStems", "evidence_css", "evidence_rgb", "item_stem", "write_file"]


def evidence_rgb(value: float) -> tuple[float, float, float]:
    """Colour of a signed evidence value in [-1, 1]: green for, red against, white for none.

    Returns (r, g, b) in [0, 1]; |value| above 1 is clipped.
    """
    pale = 1 - min(abs(value), 1.0)
    return (pale, 1.0, pale) if value >= 0 else (1.0, pale, pale)


def evidence_css(value: float) -> str:
    """:func:`evidence_rgb` as a CSS ``rgb(...)`` colour."""
    red, green, blue = (int(255 * channel) for channel in evidence_rgb(value))
    return f"rgb({red},{green},{blue})"


def item_stem(name: str, key: object = None) -> str:
    """The stem of an item's files: the readable part of its name (a path's file stem) through
    :func:`~negev.files.safe_name`, always with a hash of ``key`` (default: the whole name), so
    that items whose readable parts agree (``img/im3.png`` and ``img2/im3.png``, ``CC=C`` and
    ``CC#C``) get files of their own."""
    readable = Path(name).stem if Path(name).suffix else name
    return safe_name(readable, key=name if key is None else key)


class UniqueStems:
    """Hands out a distinct file-name stem for each item of one output folder: the
    :func:`item_stem` of its name, with ``-2``, ``-3``, ... appended when an item of the same
    name (compared without case, for case-insensitive file systems) came before."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def __call__(self, name: str) -> str:
        base = item_stem(name)
        stem, count = base, 1
        while stem.lower() in self._taken:
            count += 1
            stem = f"{base}-{count}"
        self._taken.add(stem.lower())
        return stem


def write_file(out_dir: Path, name: str, write: Callable[[Path], Any]) -> Path:
    """Write ``out_dir / name`` atomically (:func:`~negev.files.atomic_write`; ``write``
    writes the given temporary path), creating ``out_dir``. ``name`` must be one plain file name
    (no separator, not hidden; build it with :func:`item_stem` and
    :func:`~negev.files.safe_name`), so nothing is ever written outside ``out_dir``.

    Raises:
        ValueError: ``name`` is not a plain file name.
    """
    if not name or name != Path(name).name or name.startswith(".") or "\\" in name:
        raise ValueError(f"{name!r} is not a plain file name (make it with negev.files.safe_name)")
    out_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write(out_dir / name, write)
