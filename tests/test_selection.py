"""The one-standard-error rule: the paired bootstrap against closed forms and a naive loop, and
the engine and the search keeping the warm start / the defaults unless beaten beyond it."""

from __future__ import annotations

import inspect
import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from negev.engine import resolve_config, train
from negev.engine.checkpoint import RunWarning, load_checkpoint
from negev.engine.evaluation import classification_metrics
from negev.engine.model import build_model
from negev.engine.search import search
from negev.engine.selection import beats_reference, family_margin, paired_bootstrap_se
from negev.plugins import DataSplits, Example
from tests.test_warm_start import (
    FAST,
    HashedTokens,
    HashedTokensPlugin,
    _counts,
    _probabilities,
)


class _ZeroStart(HashedTokens):
    """An encoder whose start (written into the head, kept as epoch 0) is the zero model: every
    item ties, so training gets ahead of it on validation."""

    @torch.no_grad()
    def init_head(self, head) -> bool:
        for parameter in head.parameters():
            parameter.zero_()
        return True


class _ZeroStartPlugin(HashedTokensPlugin):
    def build_encoder(self, config):
        return _ZeroStart()


def _binary(n: int, seed: int) -> tuple[list[Example], torch.Tensor, torch.Tensor, np.ndarray]:
    """n two-class examples and two models' scores (N, 2): a good one and a noisier one."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = y + rng.normal(0, 0.8, n)
    noisy = y + rng.normal(0, 1.6, n)

    def scores(margin):
        return torch.from_numpy(np.stack([-margin / 2, margin / 2], 1)).float()

    examples = [Example(f"item{i}", None, (int(c),)) for i, c in enumerate(y)]
    return examples, scores(good), scores(noisy), y


def test_bootstrap_se_of_an_accuracy_difference_matches_the_closed_form():
    """Accuracy is a mean of per-item 0/1 correctness: the paired difference's standard error is
    sd(d_i) / sqrt(n), d_i = right_a(i) - right_b(i)."""
    examples, a, b, y = _binary(600, 0)
    right_a = (a.argmax(1).numpy() == y).astype(float)
    right_b = (b.argmax(1).numpy() == y).astype(float)
    closed = np.std(right_a - right_b) / math.sqrt(len(y))
    se = paired_bootstrap_se(a, b, examples, 2, False, "accuracy", resamples=2000, seed=1)
    assert se == pytest.approx(closed, rel=0.08)


def test_bootstrap_se_of_an_auc_difference_matches_a_naive_loop():
    """ROC-AUC: the same resamples scored by scikit-learn in a plain loop."""
    examples, a, b, y = _binary(80, 2)
    margin_a, margin_b = (a[:, 1] - a[:, 0]).numpy(), (b[:, 1] - b[:, 0]).numpy()
    rng = np.random.default_rng(5)
    differences = []
    for _ in range(300):
        index = rng.integers(0, len(y), len(y))
        if 0 < y[index].sum() < len(index):
            differences.append(
                roc_auc_score(y[index], margin_a[index]) - roc_auc_score(y[index], margin_b[index])
            )
    naive = np.std(differences, ddof=1)
    se = paired_bootstrap_se(a, b, examples, 2, False, "roc_auc", resamples=300, seed=5)
    assert se == pytest.approx(naive, rel=1e-6)


def test_identical_models_have_no_spread_and_bad_shapes_are_refused():
    examples, a, _, _ = _binary(30, 3)
    assert paired_bootstrap_se(a, a.clone(), examples, 2, False, "roc_auc") == 0.0
    with pytest.raises(ValueError, match="must both be"):
        paired_bootstrap_se(a, a[:5], examples, 2, False, "accuracy")


def test_beats_reference_needs_the_margin():
    examples, good, noisy, _ = _binary(200, 4)
    v_good = classification_metrics(good, examples, 2, False)["roc_auc"]
    v_noisy = classification_metrics(noisy, examples, 2, False)["roc_auc"]
    gap = v_good - v_noisy
    assert gap > 0
    se = paired_bootstrap_se(good, noisy, examples, 2, False, "roc_auc", seed=0)
    args = (good, noisy, examples, 2, False, "roc_auc")
    assert beats_reference(v_good, v_noisy, *args, margin=0.0)
    # the rule flips at the margin gap / se: ahead by gap, that is gap / se standard errors
    assert beats_reference(v_good, v_noisy, *args, margin=0.99 * gap / se)
    assert not beats_reference(v_good, v_noisy, *args, margin=1.01 * gap / se)
    assert not beats_reference(v_noisy, v_good, noisy, good, *args[2:], margin=0.0)
    assert not beats_reference(math.nan, v_good, *args, margin=1.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 6.0), st.integers(1, 10_000))
def test_family_margin_divides_the_tail_by_the_comparisons(margin, comparisons):
    """P(Z > z) = P(Z > margin) / m against scipy's normal tail; it only grows with m."""
    z = family_margin(margin, comparisons)
    assert norm.sf(z) == pytest.approx(norm.sf(margin) / comparisons, rel=1e-9)
    assert z >= margin and family_margin(margin, comparisons + 1) > z


def test_family_margin_holds_the_family_to_one_comparisons_chance():
    """m independent lucky candidates (each ahead by a standard normal number of standard
    errors): the best of them passes the raised margin in at most one comparison's 16%."""
    rng = np.random.default_rng(0)
    for m in (5, 15, 30):
        best = rng.standard_normal((20_000, m)).max(1)
        assert (best > family_margin(1.0, m)).mean() < norm.sf(1.0) + 0.01
    assert family_margin(0.0, 15) == 0.0 and family_margin(1.0, 1) == 1.0
    assert family_margin(1e6, 15) == 1e6
    with pytest.raises(ValueError, match="comparisons"):
        family_margin(1.0, 0)


def _margin_spy(module, monkeypatch) -> list[float]:
    """Record the margin of every ``beats_reference`` call ``module`` makes."""
    margins = []

    def spy(*args, **kwargs):
        margins.append(inspect.signature(beats_reference).bind(*args, **kwargs).arguments["margin"])
        return beats_reference(*args, **kwargs)

    monkeypatch.setattr(module, "beats_reference", spy)
    return margins


@pytest.mark.parametrize(("epochs", "patience", "compared"), [(3, None, 3), (4, 2, 2)])
def test_engine_raises_the_margin_for_the_epochs_it_compares(
    tmp_path, monkeypatch, epochs, patience, compared
):
    """Each epoch is compared with the warm start at the margin raised for the epochs that can
    be compared with it: the run's, or ``patience`` of them (a start still the best then stops
    the run)."""
    import negev.engine.trainer as trainer

    margins = _margin_spy(trainer, monkeypatch)
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 0.3, "epochs": epochs,
               "patience": patience}  # fmt: skip
    _, config = resolve_config({}, options)
    train(_ZeroStartPlugin(), config, quiet=True, evaluate_test=False)
    assert margins and all(m == pytest.approx(norm.isf(norm.sf(1.0) / compared)) for m in margins)


@pytest.mark.filterwarnings("ignore:Fixed parameter lr")
def test_search_raises_the_margin_for_the_other_trials(tmp_path, monkeypatch):
    """The best trial is compared with trial 0 at the margin raised for the trials besides it."""
    import negev.engine.search as search_module

    margins = _margin_spy(search_module, monkeypatch)
    options = {**FAST, "pooling": "gap", "lr": 1e-12, "out": str(tmp_path / "run")}
    plugin, config = resolve_config({}, options)
    search(plugin, config, trials=3, evaluate_test=False, quiet=True)
    # trial 0 cannot learn (lr 1e-12): the best of the two others is compared with it, once
    assert margins == [pytest.approx(norm.isf(norm.sf(1.0) / 2))]


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_engine_keeps_the_warm_start_unless_beaten_beyond_the_margin(tmp_path):
    """An impossible margin keeps epoch 0 although training is ahead of it on validation; a
    resumed run still compares with the warm start (its scores travel in the checkpoint)."""
    plugin = _ZeroStartPlugin()
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 0.3, "epochs": 2,
               "start_margin": 1e6, "keep": 10}  # fmt: skip
    _, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    records = _records(tmp_path / "run")
    assert max(r["val_mAP"] for r in records[1:]) > records[0]["val_mAP"]  # training is ahead
    assert result.best_epoch == 0 and result.best_value == records[0]["val_mAP"]
    state = load_checkpoint(tmp_path / "run", with_state=True)["state"]["kept_scores"]
    start = load_checkpoint(tmp_path / "run", which="best")
    assert start["meta"]["epoch"] == 0 and state["start_value"] == records[0]["val_mAP"]
    torch.testing.assert_close(result.val_scores, state["start"])
    _, config = resolve_config({}, {**options, "epochs": 4})
    result = train(plugin, config, quiet=True, evaluate_test=False, resume=True)
    assert [r["epoch"] for r in _records(tmp_path / "run")] == [0, 1, 2, 3, 4]
    assert result.best_epoch == 0
    # margin 0: the plain best of the same epochs
    options.update(out=str(tmp_path / "plain"), start_margin=0.0, epochs=4)
    _, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    values = [r["val_mAP"] for r in _records(tmp_path / "plain")]
    assert result.best_epoch == values.index(max(values)) > 0


@pytest.mark.filterwarnings("ignore:Fixed parameter lr")
def test_search_keeps_the_defaults_unless_beaten_beyond_the_margin(tmp_path):
    # the defaults as given cannot learn (lr 1e-12): the other trials get ahead of them
    options = {**FAST, "pooling": "gap", "lr": 1e-12, "out": str(tmp_path / "run"),
               "start_margin": 1e6}  # fmt: skip
    plugin, config = resolve_config({}, options)
    result = search(plugin, config, trials=3, evaluate_test=False, quiet=True)
    values = [t.value for t in result.trials]
    assert max(values[1:]) > values[0]  # another trial is ahead on validation ...
    assert result.best.number == 0  # ... but not beyond the margin
    assert json.loads((tmp_path / "run/best.json").read_text())["value"] == values[0]
    assert "(chosen)" in (tmp_path / "run/trials.md").read_text().splitlines()[6]


@pytest.mark.parametrize("refit", [True, False])
def test_a_kept_warm_start_is_refit_on_train_and_val(tmp_path, refit):
    """The kept warm start becomes scikit-learn's logistic regression on the token counts of
    train + val at the C chosen on validation (refit), or stays the fit on train (no refit)."""
    plugin = HashedTokensPlugin()
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 0.3, "start_margin": 1e6,
               "refit": refit}  # fmt: skip
    _, config = resolve_config({}, options)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    assert result.best_epoch == 0
    best = json.loads((tmp_path / "run/best.json").read_text())
    assert best["checkpoint"] == ("checkpoint-refit" if refit else "checkpoint-0000")
    assert json.loads((tmp_path / "run/latest.json").read_text())["checkpoint"] == "checkpoint-0002"
    c = _records(tmp_path / "run")[0]["warm_start_C"]
    data = plugin.load_data(None, config.to_dict())
    model = build_model(plugin, config, len(data.classes))  # the test's plugin, not the entry point
    model.load_state_dict(load_checkpoint(tmp_path / "run", which="best")["weights"])
    fitted = data.train + data.val if refit else data.train
    x, x_test = _counts(fitted, mean=False), _counts(data.test, mean=False)
    expected = np.stack(
        [LogisticRegression(C=c, max_iter=10_000, tol=1e-8)
         .fit(x, [int(k in e.labels) for e in fitted]).predict_proba(x_test)[:, 1]
         for k in range(2)], 1,
    )  # fmt: skip
    got = _probabilities(model.eval(), plugin, data.test, multilabel=True)
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_resume_past_a_lost_start_chooses_again_and_a_broken_refit_falls_back_to_its_fit(
    tmp_path,
):
    """A resume whose warm start checkpoint is gone drops the start as reference (the next epoch
    is the best again); an unreadable refit is replaced by the fit on train it refitted."""
    plugin = _ZeroStartPlugin()
    options = {**FAST, "out": str(tmp_path / "run"), "lr": 0.3, "epochs": 2,
               "start_margin": 1e6, "keep": 10}  # fmt: skip
    _, config = resolve_config({}, options)
    train(plugin, config, quiet=True, evaluate_test=False)
    run = tmp_path / "run"
    (run / "checkpoint-refit/model.safetensors").write_bytes(b"broken")
    with pytest.warns(RunWarning, match="checkpoint-refit"):
        fallback = load_checkpoint(run, which="best")
    assert fallback["meta"]["epoch"] == 0 and "refit" not in fallback["meta"]
    shutil.rmtree(run / "checkpoint-0000")
    _, config = resolve_config({}, {**options, "epochs": 4})
    with pytest.warns(RunWarning, match="is gone"):
        result = train(plugin, config, quiet=True, evaluate_test=False, resume=True)
    assert result.best_epoch in (3, 4) and result.val_scores is not None  # chosen again
    name = json.loads((run / "best.json").read_text())["checkpoint"]
    assert name == f"checkpoint-{result.best_epoch:04d}" and (run / name).is_dir()
    assert not (run / "checkpoint-refit").exists()


def test_train_and_val_follow_the_order_the_data_lists_them():
    """A refit on train + val sees them as listed (the same inner CV folds as a fit on the listed
    data), whichever of them were cut for validation; train then val where the order is unknown."""
    examples = [Example(f"item{i}", None, (0,)) for i in range(10)]
    rows = [("val" if i % 3 == 0 else "test" if i == 7 else "train", e)
            for i, e in enumerate(examples)]  # fmt: skip
    data = DataSplits.grouped(rows, ["a"], True)
    assert [e.name for e in data.train_and_val()] == [f"item{i}" for i in range(10) if i != 7]
    shuffled = DataSplits.shuffled(examples, ["a"], True, seed=3)
    listed = [e for e in examples if e not in shuffled.test]
    assert shuffled.train_and_val() == listed
    plain = DataSplits(data.train, data.val, [], ["a"], True)
    assert plain.train_and_val() == data.train + data.val
