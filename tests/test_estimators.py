"""MANTRA estimators: scikit-learn compatibility, negative evidence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from negev.datasets import make_presence_absence_bags
from negev.estimators import MantraClassifier, MantraRanker


@pytest.fixture(scope="module")
def task():
    data = make_presence_absence_bags(500, random_state=0)
    return data, slice(0, 300), slice(300, None)


def test_max_plus_min_learns_absence_where_max_cannot(task):
    data, train, test = task
    maxmin = MantraClassifier(random_state=0).fit(data.bags[train], data.y[train])
    max_only = MantraClassifier(kmin=0, alpha=0.0, random_state=0).fit(
        data.bags[train], data.y[train]
    )
    assert maxmin.score(data.bags[test], data.y[test]) >= 0.9
    assert max_only.score(data.bags[test], data.y[test]) <= 0.85
    # the lowest region of a bag holding q is a q region: the negative evidence
    regions = maxmin.region_scores(data.bags[test])
    with_q = [i for i, roles in enumerate(data.roles[test]) if (roles == 2).any()]
    lowest = [data.roles[test][i][np.nanargmin(regions[i])] for i in with_q]
    assert np.mean(np.array(lowest) == 2) >= 0.9


def test_scikit_learn_tools(task):
    data, train, _ = task
    bags, y = data.bags[train][:120], data.y[train][:120]
    model = MantraClassifier(max_iter=60, random_state=0)
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
    clf = MantraClassifier(random_state=0).fit(X, labels, mask=mask)
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
    with pytest.raises(ValueError, match="exactly two relevance values"):
        MantraRanker().fit(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="mask must be a bool array"):
        MantraClassifier(max_iter=2).fit(X, y, mask=np.ones((4, 3), dtype=bool))
    fitted = MantraClassifier(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="fit saw 2"):
        fitted.predict(np.ones((1, 2, 5)))
