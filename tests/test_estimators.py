"""MANTRA estimators: the bag-mean special case against scikit-learn's logistic regression,
model choice on inner validation, scikit-learn compatibility, negative evidence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from negev.datasets import make_presence_absence_bags
from negev.estimators import MantraClassifier, MantraRanker


@pytest.fixture(scope="module")
def task():
    data = make_presence_absence_bags(500, random_state=0)
    return data, slice(0, 300), slice(300, None)


def ragged_bags(n=80, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    bags = [rng.normal(size=(int(rng.integers(1, 9)), d)) + 0.3 * y[i] for i in range(n)]
    return bags, y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mix_one_is_logistic_regression_on_bag_means(n_classes):
    bags, y = ragged_bags()
    keep = y < n_classes
    bags, y = [b for b, k in zip(bags, keep, strict=True) if k], y[keep]
    means = np.stack([b.mean(0) for b in bags])
    for c in (0.05, 20.0):
        clf = MantraClassifier(C=c, mix=1.0, scale=False, max_iter=1000).fit(bags, y)
        reference = LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(means, y)
        # a multinomial model is defined up to a shift of all classes' scores
        coef = clf.coef_ - clf.coef_.mean(0) if n_classes > 2 else clf.coef_
        intercept = clf.intercept_ - clf.intercept_.mean() if n_classes > 2 else clf.intercept_
        ref_intercept = reference.intercept_ - reference.intercept_.mean() * (n_classes > 2)
        assert np.allclose(coef, reference.coef_, atol=1e-5)
        assert np.allclose(intercept, ref_intercept, atol=1e-5)
        assert (clf.predict(bags) == reference.predict(means)).all()


def test_scaling_keeps_the_bag_mean_model_and_applies_to_raw_features():
    bags, y = ragged_bags(seed=1)
    y = (y > 0).astype(int)
    bags = [b * [1, 100, 0.01, 1, 1] + [0, 50, 0, 0, 0] for b in bags]
    clf = MantraClassifier(C=1.0, mix=1.0, max_iter=1000).fit(bags, y)
    means = np.stack([b.mean(0) for b in bags])
    scaled = (means - means.mean(0)) / means.std(0)  # StandardScaler on the bag means
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(scaled, y)
    assert np.allclose(clf.decision_function(bags), reference.decision_function(scaled), atol=1e-5)


def test_choice_of_c_is_the_scikit_learn_pipeline_grid_search():
    """With mix=1 the inner validation is GridSearchCV over StandardScaler + LogisticRegression on
    bag means, same folds: same validation log losses, same C."""
    bags, y = ragged_bags(n=90, seed=2)
    y = (y > 0).astype(int)
    bags = [b * [1, 100, 0.01, 1, 1] for b in bags]
    clf = MantraClassifier(mix=1.0, cv=4, random_state=3, max_iter=1000).fit(bags, y)
    means = np.stack([b.mean(0) for b in bags])
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10, max_iter=10_000)),
        {"logisticregression__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
        cv=StratifiedKFold(4, shuffle=True, random_state=3),
        scoring="neg_log_loss",
    ).fit(means, y)
    ours = [clf.cv_results_[(c, 1.0)] for c in (0.01, 0.1, 1.0, 10.0, 100.0)]
    assert np.allclose(ours, -search.cv_results_["mean_test_score"], atol=1e-5)
    assert clf.C_ == search.best_params_["logisticregression__C"]


def test_defaults_choose_on_inner_validation_only(task):
    data, _, test = task
    clf = MantraClassifier(cv=3, random_state=0).fit(data.bags[:150], data.y[:150])
    assert clf.C_ in (0.01, 0.1, 1.0, 10.0, 100.0) and clf.mix_ in (1.0, 0.5, 0.0)
    chosen_c = {c: v for (c, m), v in clf.cv_results_.items() if m == 1.0}
    assert set(chosen_c) == {0.01, 0.1, 1.0, 10.0, 100.0}
    assert clf.C_ == min(chosen_c, key=chosen_c.get)
    mixes = {m: v for (c, m), v in clf.cv_results_.items() if c == clf.C_}
    assert set(mixes) == {1.0, 0.5, 0.0} and clf.mix_ == min(mixes, key=mixes.get)
    # "p and NOT q": the validation picks negative evidence, and it is right to
    assert clf.mix_ < 1.0
    assert clf.score(data.bags[test], data.y[test]) >= 0.95


def test_warm_start_is_the_bag_mean_logistic_regression_at_the_chosen_c():
    """Before any negative evidence is learnt, the model is StandardScaler + LogisticRegression on
    the bag means at the chosen C (scikit-learn's fit, compared on the decision function)."""
    bags, y = ragged_bags(n=90, seed=4)
    y = (y > 0).astype(int)
    bags = [b * [1, 100, 0.01, 1, 1] + [0, 50, 0, 0, 0] for b in bags]
    clf = MantraClassifier(cv=3, random_state=0, max_iter=1000).fit(bags, y)
    means = np.stack([b.mean(0) for b in bags])
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(C=clf.C_, tol=1e-12, max_iter=10_000)
    ).fit(means, y)
    start = means @ clf.start_coef_[0] + clf.start_intercept_[0]
    np.testing.assert_allclose(start, reference.decision_function(means), atol=1e-5)
    if clf.mix_ == 1.0:
        np.testing.assert_allclose(clf.decision_function(bags), start, atol=1e-12)


def one_standard_error_choice(fold_losses: dict[float, list[float]]) -> float:
    """ESL 7.10: the bag-mean model (mix 1) unless its mean loss is above the best mix's mean
    loss plus the standard error of the best mix's fold losses."""
    means = {m: sum(v) / len(v) for m, v in fold_losses.items()}
    best = min(means, key=means.get)
    values = np.array(fold_losses[best])
    error = np.sqrt(((values - values.mean()) ** 2).sum() / (len(values) - 1) / len(values))
    return best if means[1.0] > means[best] + error else 1.0


def test_negative_evidence_must_beat_the_bag_mean_model_beyond_noise():
    """Bag labels that follow the bag mean: here max+min mixed in (mix 0.5) reaches a lower mean
    validation loss by chance, within one standard error: the bag-mean model is kept; the choice
    is the rule applied to the recorded fold losses."""
    bags, y = ragged_bags(n=60, seed=1)
    y = (y > 0).astype(int)
    clf = MantraClassifier(C=1.0, cv=4, random_state=1).fit(bags, y)
    folds = {m: clf.cv_fold_losses_[(1.0, m)] for m in (1.0, 0.5, 0.0)}
    assert all(len(v) == 4 for v in folds.values())
    assert clf.cv_results_[(1.0, 0.5)] < clf.cv_results_[(1.0, 1.0)]
    assert clf.mix_ == one_standard_error_choice(folds) == 1.0


def test_packed_bags_score_like_padded_ones():
    """A list of ragged bags and the same bags zero-padded with a mask: the same model and
    scores (padding is never scored)."""
    bags, y = ragged_bags(n=40, seed=5)
    y = (y > 0).astype(int)
    longest = max(len(b) for b in bags)
    X = np.full((len(bags), longest, 5), 1e6)
    mask = np.zeros((len(bags), longest), dtype=bool)
    for i, b in enumerate(bags):
        X[i, : len(b)], mask[i, : len(b)] = b, True
    ragged = MantraClassifier(C=1.0, mix=0.5, random_state=0).fit(bags, y)
    padded = MantraClassifier(C=1.0, mix=0.5, random_state=0).fit(X, y, mask=mask)
    np.testing.assert_allclose(ragged.coef_, padded.coef_, atol=1e-10)
    np.testing.assert_allclose(
        ragged.decision_function(bags), padded.decision_function(X, mask=mask), atol=1e-10
    )


def test_max_plus_min_learns_absence_where_max_cannot(task):
    data, train, test = task
    maxmin = MantraClassifier(C=1.0, mix=0.0, random_state=0).fit(data.bags[train], data.y[train])
    max_only = MantraClassifier(C=1.0, mix=0.0, kmin=0, alpha=0.0, random_state=0).fit(
        data.bags[train], data.y[train]
    )
    hinge = MantraClassifier(C=1.0, mix=0.0, loss="hinge", max_iter=300, random_state=0).fit(
        data.bags[train], data.y[train]
    )
    assert maxmin.score(data.bags[test], data.y[test]) >= 0.9
    assert hinge.score(data.bags[test], data.y[test]) >= 0.9
    assert max_only.score(data.bags[test], data.y[test]) <= 0.85
    # the lowest region of a bag holding q is a q region: the negative evidence
    regions = maxmin.region_scores(data.bags[test])
    with_q = [i for i, roles in enumerate(data.roles[test]) if (roles == 2).any()]
    lowest = [data.roles[test][i][np.nanargmin(regions[i])] for i in with_q]
    assert np.mean(np.array(lowest) == 2) >= 0.9


def test_scikit_learn_tools(task):
    data, train, _ = task
    bags, y = data.bags[train][:120], data.y[train][:120]
    model = MantraClassifier(C=1.0, mix=0.0, max_iter=60, random_state=0)
    assert clone(model).get_params() == model.get_params()
    scores = cross_val_score(model, bags, y, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    search = GridSearchCV(model, {"alpha": [0.0, 1.0]}, cv=2).fit(bags, y)
    assert search.best_params_["alpha"] in (0.0, 1.0)
    ranker_scores = cross_val_score(MantraRanker(max_iter=60, random_state=0), bags, y, cv=3)
    assert np.all((ranker_scores >= 0) & (ranker_scores <= 1))


def test_multiclass_labels_and_padded_arrays():
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(3, 4)) * 6
    labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 90)]
    X = rng.normal(size=(90, 6, 4))
    mask = np.ones((90, 6), dtype=bool)
    mask[::2, 4:] = False
    X[~mask] = np.nan  # padding is ignored, whatever it holds
    X[:, 0] += prototypes[np.searchsorted(["cat", "dog", "eel"], labels)]
    clf = MantraClassifier(C=1.0, mix=0.0, random_state=0).fit(X, labels, mask=mask)
    assert list(clf.classes_) == ["cat", "dog", "eel"]
    assert clf.decision_function(X, mask=mask).shape == (90, 3)
    assert (clf.predict(X, mask=mask) == labels).mean() >= 0.9
    regions = clf.region_scores(X, mask=mask)
    assert regions.shape == (90, 3, 6) and np.isnan(regions[0, :, 5]).all()


def test_ranker_orders_relevant_bags_first(task):
    data, train, test = task
    ranker = MantraRanker(random_state=0).fit(data.bags[train], data.y[train])
    assert ranker.score(data.bags[test], data.y[test]) >= 0.85
    assert ranker.decision_function(data.bags[test]).shape == (200,)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((4, 3)), [0, 1, 0, 1], "must be 3-D"),
        (np.full((2, 3, 2), np.nan), [0, 1], "bag 0 region 0 has NaN"),
        ([np.ones((2, 2)), np.ones((0, 2))], [0, 1], "bag 1 has no valid region"),
        ([np.ones((2, 2)), np.ones((2, 3))], [0, 1], "different feature counts"),
        (np.ones((3, 2, 2)), [1, 1, 1], "one class only"),
        (np.ones((3, 2, 2)), [0, 1], "3 bags but y has 2 labels"),
    ],
)
def test_bad_input_is_named(X, y, message):
    with pytest.raises(ValueError, match=message):
        MantraClassifier(max_iter=2).fit(X, y)


def test_bad_parameters_and_unfitted():
    X, y = np.ones((4, 2, 2)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="kmax must be"):
        MantraClassifier(kmax=-1).fit(X, y)
    with pytest.raises(ValueError, match="C must be a positive"):
        MantraClassifier(C=0).fit(X, y)
    with pytest.raises(ValueError, match="mix must be a number in"):
        MantraClassifier(mix=2).fit(X, y)
    with pytest.raises(ValueError, match="loss must be"):
        MantraClassifier(loss="svm").fit(X, y)
    with pytest.raises(ValueError, match="two bags of each class"):
        MantraClassifier().fit(np.ones((3, 2, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match="exactly two relevance values"):
        MantraRanker().fit(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="mask must be a bool array"):
        MantraClassifier(max_iter=2).fit(X, y, mask=np.ones((4, 3), dtype=bool))
    fitted = MantraClassifier(C=1.0, mix=1.0, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="fit saw 2"):
        fitted.predict(np.ones((1, 2, 5)))
