"""negev.engine.warm_start: the convex warm start of a linear region path equals scikit-learn's
logistic regression on the count features, picks C on validation only, and is kept as epoch 0
when training does not beat it. The linear-term pooling against a naive loop."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from torch import Tensor, nn

from negev.engine import resolve_config, train
from negev.engine.data import BatchLoader
from negev.engine.model import build_model
from negev.engine.search import search
from negev.engine.warm_start import C_GRID, inverse_document_frequency, linear_warm_start
from negev.nn import LinearEvidencePool
from negev.plugins import DataSplits, Example, RegionEncoder, get_plugin

VOCAB = 30
FAST = {"modality": "tokens", "epochs": 2, "workers": 0, "plugin": {"demo_size": 160},
        "pooling": "sumwildcat"}  # fmt: skip


class HashedTokens(RegionEncoder):
    """Each token position's feature is its token's row of a table: a linear region path."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.table = nn.Embedding(VOCAB, dim)
        self.out_channels = dim

    def forward(self, inputs):
        rows, mask = self.region_rows(inputs)
        return self.table(rows).transpose(1, 2), mask

    def row_table(self) -> Tensor:
        return self.table.weight

    def region_rows(self, inputs):
        return inputs["tokens"], inputs["mask"]


class HashedTokensPlugin(type(get_plugin("tokens"))):
    """The example plugin with a hashed-token encoder and the warm start on."""

    def build_encoder(self, config):
        return HashedTokens()

    def warm_start(self, config):
        return True


class IdfTokensPlugin(HashedTokensPlugin):
    """The same, the warm start weighting each token's count by its idf (``row_idf``)."""

    def build_encoder(self, config):
        encoder = HashedTokens()
        encoder.row_idf = True
        return encoder


def _single_label(splits: DataSplits) -> DataSplits:
    """Each item's first label, or class 1 when it has none: single-label data."""

    def one(examples):
        return [dataclasses.replace(e, labels=(e.labels[0] if e.labels else 1,)) for e in examples]

    return DataSplits(one(splits.train), one(splits.val), one(splits.test), splits.classes, False)


def _counts(examples: list[Example], mean: bool) -> np.ndarray:
    """Token counts per item by a plain loop (per region, for a mean linear term)."""
    x = np.zeros((len(examples), VOCAB))
    for i, example in enumerate(examples):
        for token in example.inputs:
            x[i, token] += 1
        if mean:
            x[i] /= len(example.inputs)
    return x


def _setup(tmp_path, pooling: str, multilabel: bool, idf: bool = False, **options):
    plugin = IdfTokensPlugin() if idf else HashedTokensPlugin()
    _, config = resolve_config({}, {**FAST, "out": str(tmp_path), "pooling": pooling, **options})
    plugin.load_state({}, config.to_dict())
    data = plugin.load_data(None, config.to_dict())
    data = data if multilabel else _single_label(data)
    torch.manual_seed(0)
    model = build_model(plugin, config, len(data.classes))
    splits = {"train": data.train, "val": data.val}
    loader = BatchLoader(plugin, splits, len(data.classes), 0, torch.device("cpu"))
    return plugin, config, data, model, loader


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _probabilities(model, plugin, examples: list[Example], multilabel: bool) -> np.ndarray:
    with torch.no_grad():
        scores = model(plugin.collate(examples)).scores
    return (torch.sigmoid(scores) if multilabel else torch.softmax(scores, 1)).numpy()


def _reference(x_train, x_val, train: list[Example], c: float, multilabel: bool) -> np.ndarray:
    """scikit-learn's L2 logistic regression at ``c`` on the given features: per-class binary
    models (multi-label) or the multinomial one; the validation probabilities (N, 2)."""
    y_train = np.zeros((len(train), 2))
    for i, e in enumerate(train):
        y_train[i, list(e.labels)] = 1
    if multilabel:
        return np.stack(
            [LogisticRegression(C=c, max_iter=10_000, tol=1e-8)
             .fit(x_train, y_train[:, k]).predict_proba(x_val)[:, 1] for k in range(2)], 1,
        )  # fmt: skip
    reference = LogisticRegression(C=c, max_iter=10_000, tol=1e-8)
    return reference.fit(x_train, y_train.argmax(1)).predict_proba(x_val)


@pytest.mark.parametrize(
    ("pooling", "multilabel", "maps"),
    [("sumwildcat", True, {}), ("sumwildcat", False, {}), ("gapwildcat", True, {}),
     ("gapwildcat", True, {"num_maps": 3, "pool_each_map": True})],
)  # fmt: skip
def test_warm_start_equals_logistic_regression_on_counts(tmp_path, pooling, multilabel, maps):
    """With ``pool_each_map`` each of a class's maps gets the fit (and its bias), and the mean of
    their linear terms is the fit again."""
    plugin, config, data, model, loader = _setup(tmp_path, pooling, multilabel, **maps)
    monitor = "mAP" if multilabel else "accuracy"
    start = linear_warm_start(model, loader, data, monitor, 32)
    mean = pooling == "gapwildcat"
    x_train, x_val = _counts(data.train, mean), _counts(data.val, mean)
    if mean:  # C is a count model's: the features times the training texts' mean length
        length = np.mean([len(e.inputs) for e in data.train])
        x_train, x_val = x_train * length, x_val * length
    expected = _reference(x_train, x_val, data.train, start.C, multilabel)
    got = _probabilities(model, plugin, data.val, multilabel)
    np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_inverse_document_frequency_is_scikit_learns(seed):
    """Against TfidfTransformer's smoothed idf, on counts with empty rows and empty columns."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.3, (int(rng.integers(1, 40)), 25)) * rng.integers(0, 2, 25)
    expected = TfidfTransformer(smooth_idf=True).fit(counts).idf_
    got = inverse_document_frequency(sparse.csr_matrix(counts.astype(float)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(("pooling", "multilabel"), [("sumwildcat", False), ("gapwildcat", True)])
def test_idf_warm_start_equals_logistic_regression_on_tf_idf(tmp_path, pooling, multilabel):
    """``row_idf``: the fit is scikit-learn's L2 logistic regression on TfidfTransformer(
    norm=None) features (counts times the smoothed idf of the training items; a mean term's
    counts per region times the mean length), and the model scores the validation items as it
    does."""
    from sklearn.feature_extraction.text import TfidfTransformer

    plugin, config, data, model, loader = _setup(tmp_path, pooling, multilabel, idf=True)
    monitor = "mAP" if multilabel else "accuracy"
    start = linear_warm_start(model, loader, data, monitor, 32)
    mean = pooling == "gapwildcat"
    tfidf = TfidfTransformer(norm=None, smooth_idf=True).fit(_counts(data.train, False))
    x_train, x_val = (tfidf.transform(_counts(d, mean)).toarray() for d in (data.train, data.val))
    if mean:
        length = np.mean([len(e.inputs) for e in data.train])
        x_train, x_val = x_train * length, x_val * length
    expected = _reference(x_train, x_val, data.train, start.C, multilabel)
    got = _probabilities(model, plugin, data.val, multilabel)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    if not multilabel:  # the idf changes the fit: the count model at the same C is another
        counts = LogisticRegression(C=start.C, max_iter=10_000, tol=1e-8)
        counts.fit(_counts(data.train, False), [e.labels[0] for e in data.train])
        assert np.abs(counts.predict_proba(_counts(data.val, False)) - got).max() > 1e-2


def test_maps_pooled_each_leave_the_fit_apart_and_stay_apart(tmp_path):
    """The fit writes one row into every map of a class; ``begin_training`` spreads them around
    their mean (the model is still the fit: the gates are 0 and the linear term reads the mean),
    and a training step moves them differently (tied maps would move alike)."""
    plugin, config, data, model, loader = _setup(
        tmp_path, "gapwildcat", True, num_maps=3, pool_each_map=True
    )
    linear_warm_start(model, loader, data, "mAP", 32)
    assert model.head.maps_tied()
    fitted = _probabilities(model, plugin, data.val, True)
    model.begin_training(seed=0)
    assert not model.head.maps_tied()
    np.testing.assert_allclose(_probabilities(model, plugin, data.val, True), fitted, atol=1e-5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = plugin.collate(data.train[:16])
    targets = torch.zeros(16, 2)
    for i, e in enumerate(data.train[:16]):
        targets[i, list(e.labels)] = 1
    before = model.head.pool.gate.detach().clone()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch).scores, targets)
    loss.backward()
    optimizer.step()
    steps = (model.head.pool.gate.detach() - before).reshape(2, 3)
    assert (steps.amax(1) - steps.amin(1) > 1e-6).all()  # each map's gate its own step


def test_warm_start_chooses_c_on_validation_only(tmp_path):
    """C is the grid's best on validation, by an independent scikit-learn computation; the test
    split (poisoned: reading it fails) is never read."""

    class Poisoned(list):
        def __iter__(self):
            raise AssertionError("the test split was read")

        def __getitem__(self, index):
            raise AssertionError("the test split was read")

        def __len__(self):
            raise AssertionError("the test split was read")

    plugin, config, data, model, _ = _setup(tmp_path, "sumwildcat", True)
    data.test = Poisoned()
    splits = {"train": data.train, "val": data.val, "test": Poisoned()}
    loader = BatchLoader(plugin, splits, 2, 0, torch.device("cpu"))
    start = linear_warm_start(model, loader, data, "mAP", 32)
    x_train, x_val = _counts(data.train, False), _counts(data.val, False)
    y = {s: np.array([[c in e.labels for c in range(2)] for e in getattr(data, s)])
         for s in ("train", "val")}  # fmt: skip

    def val_map(c: float) -> float:
        aps = []
        for k in range(2):
            fitted = LogisticRegression(C=c, max_iter=10_000, tol=1e-8)
            fitted.fit(x_train, y["train"][:, k])
            aps.append(average_precision_score(y["val"][:, k], fitted.decision_function(x_val)))
        return float(np.mean(aps))

    values = {c: val_map(c) for c in C_GRID}
    best = max(values.values())
    assert start.C in [c for c, v in values.items() if v >= best - 1e-6]
    assert start.value == pytest.approx(values[start.C], abs=1e-6)


def test_best_epoch_can_be_the_warm_start(tmp_path):
    """Training that cannot change the model (lr 1e-12: below float32 resolution) keeps epoch
    0 (a later epoch must be strictly better); epoch 0 is recorded with its C."""
    plugin = HashedTokensPlugin()
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 1e-12, "weight_decay": 0.0}
    _, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True)
    assert result.best_epoch == 0
    records = _records(tmp_path / "run")
    assert [r["epoch"] for r in records] == [0, 1, 2] and records[0]["warm_start_C"] in C_GRID
    assert result.best_value == records[0]["val_mAP"]


def test_best_epoch_is_chosen_among_epoch_zero_and_training(tmp_path):
    """start_margin 0: the plain best epoch (the one-SE rule: tests/test_selection.py)."""
    plugin = HashedTokensPlugin()
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 0.3, "start_margin": 0.0}
    _, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    records = _records(tmp_path / "run")
    values = [r["val_mAP"] for r in records]
    assert result.best_epoch == values.index(max(values))
    assert result.best_value >= records[0]["val_mAP"]


def test_warm_start_off_or_without_linear_path_trains_as_before(tmp_path):
    plugin = HashedTokensPlugin()
    _, config = resolve_config({}, {**FAST, "out": str(tmp_path / "run"), "pooling": "wildcat"})
    train(plugin, config, quiet=True, evaluate_test=False)
    records = _records(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2]


def test_search_tries_the_defaults_with_the_warm_start(tmp_path):
    plugin = HashedTokensPlugin()
    _, config = resolve_config({}, {**FAST, "out": str(tmp_path / "run")})
    result = search(plugin, config, trials=2, evaluate_test=False, quiet=True)
    first = result.trials[0]
    assert first.params["pooling"] == "sumwildcat" and first.params["kmax"] == 0.25
    records = (tmp_path / "run/trials/trial-000/metrics.jsonl").read_text().splitlines()
    assert json.loads(records[0])["epoch"] == 0 and "warm_start_C" in json.loads(records[0])


def _naive_linear_evidence(scores, mask, bias, gate, k, alpha, linear):
    out = torch.zeros(scores.shape[:2])
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            valid = scores[b, c][mask[b]]
            term = valid.sum() if linear == "sum" else valid.mean()
            ranked = valid.sort(descending=True).values
            n = max(1, round(k * len(valid)))
            extremes = ranked[:n].mean() + alpha * ranked[-n:].mean()
            out[b, c] = bias[c] + term + gate[c] * extremes
    return out


@pytest.mark.parametrize("linear", ["sum", "mean"])
def test_linear_evidence_pool_matches_a_loop(linear):
    torch.manual_seed(1)
    scores = torch.randn(4, 3, 9)
    mask = torch.rand(4, 9) > 0.3
    mask[:, 0] = True
    pool = LinearEvidencePool(0.25, None, 0.5, linear, num_classes=3)
    with torch.no_grad():
        pool.bias.copy_(torch.randn(3))
        pool.gate.copy_(torch.randn(3))
    expected = _naive_linear_evidence(scores, mask, pool.bias, pool.gate, 0.25, 0.5, linear)
    torch.testing.assert_close(pool(scores, mask), expected.detach())
    # gate 0: the linear term alone, whatever WILDCAT's value
    pool.start_linear(torch.zeros(3))
    linear_only = pool(scores, mask)
    total = scores.masked_fill(~mask.unsqueeze(1), 0).sum(-1)
    expected = total if linear == "sum" else total / mask.sum(-1, keepdim=True)
    torch.testing.assert_close(linear_only, expected)
