"""Word tokenization with character offsets, and the vocabulary built from training texts."""

from __future__ import annotations

import re
import zlib
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


def hashed_ngrams(words: list[str], widths: tuple[int, ...], buckets: int) -> list[int]:
    """Bucket ids of the n-grams of ``words``, width by width, windows starting at token 0..n-1
    (the encoders' region layout; a window that does not fit gets 0, masked out later).

    ``zlib.crc32`` of the space-joined n-gram, so ids are the same in every process (Python's
    ``hash`` of a string is salted per process)."""
    n = len(words)
    return [
        zlib.crc32(" ".join(words[s : s + w]).encode()) % buckets if s + w <= n else 0
        for w in widths
        for s in range(n)
    ]
