"""Files negev writes: whole or not at all, and named safely from data.

- :func:`atomic_write` writes into a temporary file next to the target, flushes it to disk and
  renames it over the target, so that a reader (or a crash) never sees a partial file;
- :func:`safe_name` is the one sanitiser of file names that come from data (item names, class
  names, identifiers): the result is a single plain path component, never empty, ``.``,
  ``..`` or hidden, and distinct inputs give distinct names.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_HASHED = re.compile(r"-[0-9a-f]{8}$")


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Create or replace ``path`` atomically: ``write(temporary)`` writes a temporary file in
    the same folder (whose name ends with ``path``'s suffix, for writers that read the format
    from it), which is flushed to disk and renamed over ``path``; on any error it is removed
    and ``path`` is left as it was. The file gets the usual mode (0666 less the umask).

    Returns:
        ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def safe_name(text: str, *, key: object = None, limit: int = 40) -> str:
    """A file name component made from data.

    ``text`` with every character but ASCII letters, digits, ``-`` and ``_`` replaced by ``_``,
    cut to ``limit`` characters, then ``-`` and 8 hex digits of a BLAKE2 hash of ``key`` when a
    key is given (an item's identity: its full path or text), or of ``text`` when anything was
    replaced or cut, or when ``text`` already ends like a hash. So ``cat`` stays ``cat``,
    ``tox/acute`` becomes ``tox_acute-<hash>``, and two texts (keys) that differ give names that
    differ (up to a 32-bit hash collision).
    """
    clean = _UNSAFE.sub("_", text)[:limit]
    if key is None and clean == text and clean and not _HASHED.search(clean):
        return clean
    digest = str(text if key is None else key).encode("utf-8", "surrogatepass")
    return f"{clean}-{hashlib.blake2b(digest, digest_size=4).hexdigest()}"
