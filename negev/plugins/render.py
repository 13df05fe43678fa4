"""Small helpers that plugins share to render evidence for people."""

from __future__ import annotations

__all__ = ["evidence_css", "evidence_rgb", "file_stem"]


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


def file_stem(name: str, default: str = "item", limit: int = 60) -> str:
    """A file-name-safe stem for an item's name: letters, digits, '-' and '_' kept, the rest '_'."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:limit] or default
