"""The text plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from negev.plugins.options import option
from negev.plugins.tables import FIELD_LIMIT

__all__ = ["MAX_CHARS", "TextOptions", "physical_memory"]

#: Longest text, in characters (option ``max_chars``): the CSV field limit, for JSONL too. A
#: longer text is a bad item.
MAX_CHARS = FIELD_LIMIT
#: Options of the hashed encoder only: set under another encoder, they are refused.
HASHED = MappingProxyType({"encoder": ("hashed",)})


@dataclass(frozen=True)
class TextOptions:
    """Options of the ``text`` plugin and of its reader (:func:`negev_text.data.read`)."""

    encoder: Literal["hashed", "conv", "transformer"] = option(
        "hashed", "hashed: n-grams hashed into embeddings; conv; or transformer"
    )
    buckets: int = option(
        2**20,
        "hashed: embedding rows the n-grams are hashed into (scikit-learn's HashingVectorizer "
        "default: fewer n-grams share a row than at 2^18)",
        applies=HASHED,
    )
    hidden: int = option(16, "hashed: embedding size", applies=HASHED)
    tfidf_norm: bool | None = option(
        None,
        "hashed: divide each text's window features by its TF-IDF length (the L2 norm of its "
        "idf-weighted n-gram counts, TfidfVectorizer's norm='l2'), times a training-set constant "
        "(the training texts' mean length per window: a typical text's windows weigh 1 in all); "
        "default (none): "
        "under sumwildcat, whose sum of windows it makes the L2-normalised TF-IDF model, and not "
        "under the poolings that average windows (gap, gapwildcat, wildcat, ...), which are "
        "length-normalised already",
        saved_before=False,
        applies=HASHED,
        otherwise=False,  # no other encoder normalises
    )
    warm_start: bool = option(
        True,
        "hashed, under a pooling with a linear term (gapwildcat, sumwildcat): fit that term (a "
        "logistic regression on the n-grams' TF-IDF, L2-normalised under tfidf_norm, C on "
        "validation) before training and keep it as epoch 0",
        applies=HASHED,
        otherwise=False,  # no other encoder is warm-started
    )
    widths: tuple[int, ...] = option((1, 2), "window widths in tokens, e.g. 1,2,3")
    max_tokens: int | None = option(
        None,
        "tokens kept per text, longer texts truncated (default none: the whole text, every n-gram "
        "counted as a bag-of-n-grams model counts it; transformer: the model's maximum length)",
    )
    transformer_path: str | None = option(
        None, "transformer: a local transformers directory", applies={"encoder": ("transformer",)}
    )
    demo_size: int = option(6000, "demo: texts")
    evidence_class: str | None = option(None, "class the truth spans speak for (default: last)")
    text_column: str = option("text", "the text column")
    label_column: str = option("label", "the label column (|-separated labels: multi-label)")
    split_column: str = option("split", "the train / val / test column (optional)")
    classes: str | None = option(None, "fixed class list, comma-separated (default: every label)")
    max_chars: int = option(MAX_CHARS, "longest text in characters; a longer one is a bad item")

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"plugin option widths must be positive integers, got {self.widths}")
        for name in ("buckets", "hidden", "max_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"plugin option {name} must be >= 1, got {getattr(self, name)}")
        size = 4 * self.buckets * self.hidden
        memory = physical_memory() if self.encoder == "hashed" else None
        if memory is not None and size > memory:
            raise ValueError(
                f"plugin options buckets={self.buckets}, hidden={self.hidden}: the hashed "
                f"embedding alone (buckets x hidden float32) is {size / 2**30:.1f} GiB, more than "
                f"this machine's {memory / 2**30:.1f} GiB of memory (training holds it about 4 "
                "times: weights, gradient, two optimiser moments); lower buckets"
            )
        if self.max_chars < 1:
            raise ValueError(f"plugin option max_chars must be >= 1, got {self.max_chars}")


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (POSIX ``sysconf``), None where unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None
