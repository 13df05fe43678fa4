"""negev modality plugin for text: token-window regions, negation and contrast found as negative
evidence."""

from negev_text.plugin import TextPlugin

__all__ = ["TextPlugin"]
