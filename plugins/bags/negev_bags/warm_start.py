"""Convex warm start of the linear instance scorer: the bag-mean logistic regression.

Under a pooling that holds the bag mean of linear instance scores (``gap``; ``meanwildcat``,
whose evidence term is 0 when its instance evidence is), a linear instance scorer
``z_h = <w, x_h> + b`` scores a bag ``<w, mean_h x_h> + b``: logistic regression on the bag
means, the first baseline of MIL practitioners. :func:`bag_mean_start` fits it on the training
split only, with
:class:`negev.estimators.MantraClassifier` (``mix=1``: standardised bag means, L2 logistic
regression, C in 0.01..100 by the log loss of an inner stratified 5-fold CV of the training bags,
then refitted on all of them), one binary model per class on multi-label data (the plugin's
binary tasks are one-class multi-label), the multinomial model on single-label data. The
validation split is left to the engine's epoch selection and the test split is never read.

The fit is saved in the plugin state (JSON) and written into the head's projection when the model
is built (:meth:`negev_bags.encoders.InstanceEncoder.init_head`).
The core engine has a warm start of its own for table encoders (a fit kept as epoch 0); this one
is the dense-feature case, to be unified with it.
"""

from __future__ import annotations

import math

import numpy as np

from negev.estimators import MantraClassifier
from negev.plugins import DataSplits

__all__ = ["MEAN_POOLINGS", "bag_mean_start", "bag_means"]

#: Poolings that hold the bag mean of linear instance scores (the baseline).
MEAN_POOLINGS = ("gap", "meanwildcat")


def bag_means(examples) -> np.ndarray:
    """(n, d) float64: each bag's mean instance (bags read one at a time)."""
    return np.stack([e.inputs.load()[0].double().mean(0).numpy() for e in examples])


def _binary(means: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float, float | None]:
    """(w (d,), b, C) of the bag-mean logistic regression for 0/1 targets ``y``; a constant
    (its clipped log-odds, C None) when ``y`` has one value."""
    if len(np.unique(y)) < 2:
        share = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
        return np.zeros(means.shape[1]), math.log(share / (1 - share)), None
    fitted = _classifier(y, seed).fit(means[:, None, :], y)
    return fitted.coef_[0], float(fitted.intercept_[0]), fitted.C_


def _classifier(y: np.ndarray, seed: int) -> MantraClassifier:
    # C on an inner CV needs two bags of each class; else scikit-learn's default C = 1
    choose = np.unique(y, return_counts=True)[1].min() >= 2
    return MantraClassifier(C="auto" if choose else 1.0, mix=1.0, random_state=seed)


def bag_mean_start(data: DataSplits, seed: int) -> dict[str, list]:
    """The bag-mean logistic regression of the training split in the model's class layout.

    Returns:
        ``{"weight": (C, d), "bias": (C,), "C": (C,) or (1,)}`` as lists (a C is None where
        one label value was seen and nothing fitted), on the raw features:
        class c's bag score is ``<weight[c], mean_h x_h> + bias[c]``. A two-class single-label
        model is written ``+-w / 2`` (the same softmax); a class never seen gets the lowest
        bias minus 10.
    """
    means = bag_means(data.train)
    num_classes = len(data.classes)
    weight, bias = np.zeros((num_classes, means.shape[1])), np.zeros(num_classes)
    if data.multilabel:
        chosen = []
        for c in range(num_classes):
            rows = np.array([c not in e.unknown for e in data.train])
            y = np.array([int(c in e.labels) for e in data.train])[rows]
            weight[c], bias[c], value = _binary(means[rows], y, seed)
            chosen.append(value)
        return {"weight": weight.tolist(), "bias": bias.tolist(), "C": chosen}
    labels = np.array([e.labels[0] for e in data.train])
    seen = np.unique(labels)
    if len(seen) < 2:  # one class seen: nothing to separate, the softmax is flat
        return {"weight": weight.tolist(), "bias": bias.tolist(), "C": [None]}
    fitted = _classifier(labels, seed).fit(means[:, None, :], labels)
    if len(seen) == 2:
        low, high = seen
        weight[high], bias[high] = fitted.coef_[0] / 2, fitted.intercept_[0] / 2
        weight[low], bias[low] = -fitted.coef_[0] / 2, -fitted.intercept_[0] / 2
    else:
        weight[seen], bias[seen] = fitted.coef_, fitted.intercept_
        bias[np.setdiff1d(np.arange(num_classes), seen)] = fitted.intercept_.min() - 10.0
    return {"weight": weight.tolist(), "bias": bias.tolist(), "C": [fitted.C_]}
