"""The hashed text encoder's linear path: under a pooling with a linear term the engine starts the
model at scikit-learn's logistic regression on the texts' TF-IDF n-gram features (counts hashed
into the same buckets, per window under a mean term, times the smoothed idf of the training
texts), computed apart."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression

from negev.engine import resolve_config
from negev.engine.data import BatchLoader
from negev.engine.model import build_model
from negev.engine.warm_start import linear_warm_start
from negev_text.tokens import Tokens

BUCKETS = 512  # few buckets: collisions are part of the model


def _counts(texts: list[str], limit: int | None) -> np.ndarray:
    """(N, BUCKETS) n-gram (widths 1, 2) counts per bucket."""
    counter = CountVectorizer(tokenizer=lambda t: Tokens.of(t, limit).words, lowercase=False,
                              token_pattern=None, ngram_range=(1, 2))  # fmt: skip
    counts = counter.fit_transform(texts)
    rows = [zlib.crc32(gram.encode()) % BUCKETS for gram in counter.get_feature_names_out()]
    into = sparse.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)),
                             shape=(len(rows), BUCKETS))  # fmt: skip
    return (counts @ into).toarray()


@pytest.mark.parametrize("pooling", ["gapwildcat", "sumwildcat"])
def test_warm_start_is_logistic_regression_on_tf_idf(tmp_path, pooling):
    """sumwildcat: on the counts times idf; gapwildcat: on the counts / the text's window count
    R (times the training texts' mean R, so that C means what it means for counts) times idf."""
    options = {"modality": "text", "out": str(tmp_path), "pooling": pooling,
               "plugin": {"demo_size": 300, "buckets": BUCKETS}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    assert plugin.warm_start(config.to_dict())
    plugin.load_state({}, config.to_dict())
    data = plugin.load_data(None, config.to_dict())
    model = build_model(plugin, config, len(data.classes))
    loader = BatchLoader(plugin, {"train": data.train, "val": data.val}, 1, 0, torch.device("cpu"))
    start = linear_warm_start(model, loader, data, "mAP", 32, grid=(0.1, 1.0))
    assert start is not None

    limit = plugin.options.max_tokens
    x = _counts([e.inputs for e in data.train + data.val], limit)
    if pooling == "gapwildcat":
        windows = x.sum(1, keepdims=True)
        x = x / windows * windows[: len(data.train)].mean()
    idf = TfidfTransformer(norm=None).fit(x[: len(data.train)] > 0).idf_
    x_train, x_val = x[: len(data.train)] * idf, x[len(data.train) :] * idf
    labels = np.array([0 in e.labels for e in data.train])
    reference = LogisticRegression(C=start.C, max_iter=10_000, tol=1e-8)
    expected = reference.fit(x_train, labels).predict_proba(x_val)[:, 1]
    with torch.no_grad():
        scores = model(plugin.collate(data.val)).scores[:, 0]
    np.testing.assert_allclose(torch.sigmoid(scores).numpy(), expected, atol=1e-3)
    # the plain average (the plugin's GAP) has no linear path to fit: no warm start
    _, config = resolve_config({}, {**options, "pooling": "gap"})
    assert linear_warm_start(build_model(plugin, config, 1), loader, data, "mAP", 32) is None
