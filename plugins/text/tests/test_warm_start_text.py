"""The hashed text encoder's linear path: under a pooling with a linear term the engine starts the
model at scikit-learn's logistic regression on the texts' TF-IDF n-gram features (counts hashed
into the same buckets, per window under a mean term, times the smoothed idf of the training
texts), computed apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression

from negev.engine import load_model, resolve_config, train
from negev.engine.checkpoint import load_checkpoint
from negev.engine.data import BatchLoader
from negev.engine.model import build_model
from negev.engine.recipe import build_optimizer
from negev.engine.warm_start import linear_warm_start
from negev.nn.functional import row_count_norm
from negev.plugins import Example

BUCKETS = 512  # few buckets: collisions are part of the model


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("pooling", ["gapwildcat", "sumwildcat"])
def test_warm_start_is_logistic_regression_on_tf_idf(tmp_path, pooling, norm, bucket_counts):
    """sumwildcat: on the counts times idf, L2-normalised over the n-grams of the training
    texts' vocabulary (TfidfTransformer's norm="l2"; ``tfidf_norm=False``: not normalised);
    gapwildcat: that over the text's window count R (times the training texts' mean R, so that C
    means what it means for counts)."""
    options = {"modality": "text", "out": str(tmp_path), "pooling": pooling,
               "plugin": {"demo_size": 300, "buckets": BUCKETS, "tfidf_norm": norm}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    assert plugin.warm_start(config.to_dict())
    plugin.load_state({}, config.to_dict())
    data = plugin.load_data(None, config.to_dict())
    model = build_model(plugin, config, len(data.classes))
    loader = BatchLoader(plugin, {"train": data.train, "val": data.val}, 1, 0, torch.device("cpu"))
    start = linear_warm_start(model, loader, data, "mAP", 32, grid=(0.1, 1.0))
    assert start is not None

    limit = plugin.options.max_tokens
    x = bucket_counts([e.inputs for e in data.train + data.val], BUCKETS, limit=limit)
    windows = x.sum(1, keepdims=True)
    train = len(data.train)
    vocabulary = x[:train].sum(0) > 0  # buckets a training text has
    tfidf = TfidfTransformer(norm="l2" if norm else None).fit(x[:train, vocabulary])
    x = tfidf.transform(x[:, vocabulary]).toarray()
    if pooling == "gapwildcat":
        x = x / windows * windows[:train].mean()
    labels = np.array([0 in e.labels for e in data.train])
    reference = LogisticRegression(C=start.C, max_iter=10_000, tol=1e-8)
    expected = reference.fit(x[:train], labels).predict_proba(x[train:])[:, 1]
    with torch.no_grad():
        scores = model(plugin.collate(data.val)).scores[:, 0]
    np.testing.assert_allclose(torch.sigmoid(scores).numpy(), expected, atol=1e-3)
    # the plain average (the plugin's GAP) has no linear path to fit: no warm start
    _, config = resolve_config({}, {**options, "pooling": "gap"})
    assert linear_warm_start(build_model(plugin, config, 1), loader, data, "mAP", 32) is None


def test_row_count_norm_is_the_tf_idf_length(bucket_counts):
    """The hashed encoder divides a text's windows by the norm TfidfTransformer divides its
    vector by: n-grams outside the training vocabulary (weight 0) left out, padding ignored."""
    texts = ["the cat sat on the mat the end", "a dog", "zebra", "cat cat cat dog and more words"]
    x = bucket_counts(texts, BUCKETS)
    weights = TfidfTransformer(norm=None).fit(x[:2]).idf_ * (x[:2].sum(0) > 0)
    expected = np.linalg.norm(x * weights, axis=1)
    plugin, config = resolve_config({}, {"modality": "text", "plugin": {"buckets": BUCKETS}})
    plugin.load_state({}, config.to_dict())
    batch = plugin.collate([Example(str(i), t, frozenset()) for i, t in enumerate(texts)])
    encoder = plugin.build_encoder(config.to_dict())
    rows, mask = encoder.region_rows(batch)
    got = row_count_norm(rows, mask, torch.from_numpy(weights))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_a_model_without_warm_start_still_gets_the_idf_of_its_training_texts(
    tmp_path, bucket_counts
):
    """GAP with ``tfidf_norm``, no linear term to fit: training still fits the row weights of the
    TF-IDF length on the training texts (the smoothed idf; 0 for buckets no training text has)
    and their mean length, and the run's checkpoint keeps them."""
    options = {"modality": "text", "out": str(tmp_path), "pooling": "gap", "epochs": 1,
               "workers": 0, "plugin": {"demo_size": 200, "buckets": BUCKETS,
                                        "tfidf_norm": True}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    plugin, _, model, _ = load_model(result.run_dir)
    data = plugin.load_data(None, config.to_dict())
    x = bucket_counts([e.inputs for e in data.train], BUCKETS)
    expected = TfidfTransformer(norm=None).fit(x).idf_ * (x.sum(0) > 0)
    np.testing.assert_allclose(model.encoder.row_weights.numpy(), expected, rtol=1e-6)
    lengths = np.linalg.norm(x * expected, axis=1)  # the mean length the features are scaled to
    assert model.encoder.reference_length.item() == pytest.approx(lengths[lengths > 0].mean())


def test_resuming_a_run_saved_before_tfidf_norm_names_the_option(tmp_path):
    """Its windows were not normalised: resuming it with the default (which normalises under
    sumwildcat) is refused naming the option, and resuming with the run's value works."""
    options = {"modality": "text", "out": str(tmp_path), "epochs": 1, "workers": 0,
               "plugin": {"demo_size": 120, "buckets": BUCKETS, "tfidf_norm": False}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    train(plugin, config, quiet=True, evaluate_test=False)
    for saved in tmp_path.glob("checkpoint-*/config.json"):  # as a run saved before the option
        meta = json.loads(saved.read_text())
        del meta["config"]["plugin"]["tfidf_norm"]
        saved.write_text(json.dumps(meta))
    default = {**options, "epochs": 2, "plugin": {"demo_size": 120, "buckets": BUCKETS}}
    plugin, config = resolve_config({}, default)
    with pytest.raises(ValueError, match="plugin.tfidf_norm is None here, False in the run"):
        train(plugin, config, quiet=True, evaluate_test=False, resume=True)
    plugin, config = resolve_config({}, {**options, "epochs": 2})
    resumed = train(plugin, config, quiet=True, evaluate_test=False, resume=True)
    assert resumed.best_epoch is not None


def test_one_step_from_the_warm_start_moves_a_long_text_about_as_far_as_a_short_one(
    tmp_path, bucket_counts
):
    """The optimizer's first step from the TF-IDF fit (AdamW at the plugin's lr 0.01, which moves
    every trained number by about lr) must not move a text's score in proportion to its window
    count: the per-window projection bias would add 2 lr n to a binary logit, and a reference
    length of the mean l would weigh a text's windows about n times. Short texts of 12 words and
    long ones of 1,500 (about 250 times the windows): the long texts' median move stays within a
    few times the short texts', and below one logit."""
    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(400)]
    rows = [["text", "label", "split"]]
    for i in range(80):
        label = ("bad", "good")[i % 2]
        words = list(rng.choice(vocabulary, 12 if i < 40 else 1500)) + [label] * 2
        rng.shuffle(words)
        rows.append([" ".join(words), label, "train" if i % 4 else "val"])
    path = tmp_path / "texts.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    options = {"modality": "text", "data": str(path), "out": str(tmp_path / "run"),
               "plugin": {"buckets": BUCKETS}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    plugin.load_state({}, config.to_dict())
    data = plugin.load_data(str(path), config.to_dict())
    model = build_model(plugin, config, len(data.classes))
    loader = BatchLoader(plugin, {"train": data.train, "val": data.val}, 2, 0, torch.device("cpu"))
    assert linear_warm_start(model, loader, data, "accuracy", 32, grid=(10.0,)) is not None
    # l_ref: the mean TF-IDF length per window
    x = bucket_counts([e.inputs for e in data.train], BUCKETS)
    lengths = np.linalg.norm(x * TfidfTransformer(norm=None).fit(x).idf_, axis=1)
    assert model.encoder.reference_length.item() == pytest.approx((lengths / x.sum(1)).mean())
    model.begin_training(0)
    assert not model.head.proj.bias.requires_grad and not model.head.proj.bias.any()

    items = data.train + data.val
    batch = plugin.collate([plugin.load_item(e, train=False, generator=None) for e in items])
    with torch.no_grad():
        before = model(batch).scores
    optimizer = build_optimizer(model, config)
    targets = torch.tensor([e.labels[0] for e in items])
    torch.nn.functional.cross_entropy(model(batch).scores, targets).backward()
    optimizer.step()
    with torch.no_grad():
        moved = ((model(batch).scores - before) @ torch.tensor([-1.0, 1.0])).abs()
    long = torch.tensor([len(e.inputs.split()) > 100 for e in items])
    short_move, long_move = moved[~long].median(), moved[long].median()
    assert long_move < 1.0
    assert long_move < 10 * short_move


def test_a_run_whose_summing_pool_trained_the_projection_bias_loads_but_does_not_resume(
    tmp_path, monkeypatch
):
    """A run saved before the projection's bias was kept at 0 under a summing pool (simulated:
    the bias trainable again): its checkpoint loads with its trained bias, so it predicts as it
    did, and resuming it is refused, naming the cause, instead of failing in the optimizer."""
    from negev.nn.modules.head import EvidenceHead

    original = EvidenceHead.__init__

    def former(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.proj.bias.requires_grad_(True)

    options = {"modality": "text", "out": str(tmp_path), "epochs": 1, "workers": 0,
               "plugin": {"demo_size": 120, "buckets": BUCKETS}}  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(EvidenceHead, "__init__", former)
        plugin, config = resolve_config({}, options)
        train(plugin, config, quiet=True, evaluate_test=False)
    saved = load_checkpoint(tmp_path, which="latest")["weights"]["head.proj.bias"]
    _, _, model, _ = load_model(tmp_path, which="latest")
    assert saved.any() and torch.equal(model.head.proj.bias, saved)
    plugin, config = resolve_config({}, {**options, "epochs": 2})
    with pytest.raises(ValueError, match="optimizer state does not fit.*projection's bias"):
        train(plugin, config, resume=True, quiet=True, evaluate_test=False)
