"""Synthetic datasets generated on the fly (no download)."""

from negev.datasets.presence_absence import PresenceAbsenceBags, make_presence_absence_bags

__all__ = ["PresenceAbsenceBags", "make_presence_absence_bags"]
