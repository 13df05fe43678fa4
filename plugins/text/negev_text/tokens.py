"""Word tokenization with character offsets, and the vocabulary built from training texts."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


@dataclass
class Tokens:
    """A text cut into tokens: ``words[i]`` spans ``text[starts[i]:ends[i]]``."""

    text: str
    words: list[str]
    starts: list[int]
    ends: list[int]

    @classmethod
    def of(cls, text: str, limit: int | None = None) -> Tokens:
        matches = list(_TOKEN.finditer(text))[:limit]
        return cls(text, [m.group().lower() for m in matches], [m.start() for m in matches],
                   [m.end() for m in matches])  # fmt: skip

    def covering(self, start: int, end: int) -> set[int]:
        """Indices of the tokens that overlap the characters [start, end)."""
        return {
            i
            for i, (s, e) in enumerate(zip(self.starts, self.ends, strict=True))
            if s < end and e > start
        }


def build_vocabulary(texts: list[list[str]], min_count: int = 1, size: int = 20_000) -> list[str]:
    """The ``size`` most frequent words seen at least ``min_count`` times, after PAD and UNK."""
    counts = Counter(word for words in texts for word in words)
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *ranked[: size - 2]]
