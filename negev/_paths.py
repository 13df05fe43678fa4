"""File names derived from data: sanitised, and unique within one output directory."""

from __future__ import annotations

from negev.plugins.render import file_stem

__all__ = ["UniqueStems"]


class UniqueStems:
    """Hands out a distinct file-name stem for each item name.

    The stem is :func:`~negev.plugins.render.file_stem` of the name (letters, digits, ``-`` and
    ``_``; at most ``limit`` characters); a stem already given (compared without case, for
    case-insensitive file systems) gets ``-2``, ``-3``, ... appended. Names that differ only in
    characters the sanitising drops thus never write over each other's files.
    """

    def __init__(self, limit: int = 80):
        self.limit = limit
        self._taken: set[str] = set()

    def __call__(self, name: str) -> str:
        base = file_stem(name, limit=self.limit)
        stem, count = base, 1
        while stem.lower() in self._taken:
            count += 1
            stem = f"{base}-{count}"
        self._taken.add(stem.lower())
        return stem
