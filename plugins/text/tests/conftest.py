"""The text tests' independent reference: hashed n-gram counts computed with scikit-learn."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from negev_text.tokens import Tokens


def ngram_bucket_counts(
    texts: list[str],
    buckets: int,
    ngram_range: tuple[int, int] = (1, 2),
    limit: int | None = None,
) -> np.ndarray:
    """(N, buckets) float64: each text's n-gram counts (n from ``ngram_range[0]`` to
    ``ngram_range[1]``, scikit-learn's inclusive range, not the plugin's list of ``widths``; the
    first ``limit`` tokens) summed per bucket, an n-gram's bucket being its CRC-32 mod
    ``buckets``: what the hashed encoder reads, counted by scikit-learn's ``CountVectorizer``."""
    counter = CountVectorizer(tokenizer=lambda t: Tokens.of(t, limit).words, lowercase=False,
                              token_pattern=None, ngram_range=ngram_range)  # fmt: skip
    counts = counter.fit_transform(texts)
    rows = [zlib.crc32(gram.encode()) % buckets for gram in counter.get_feature_names_out()]
    into = sparse.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)),
                             shape=(len(rows), buckets))  # fmt: skip
    return (counts @ into).toarray()


@pytest.fixture
def bucket_counts() -> Callable[..., np.ndarray]:
    """:func:`ngram_bucket_counts`."""
    return ngram_bucket_counts
