"""Leaving the baseline only on evidence: the one-standard-error rule on the validation split.

A validation split of a few dozen items ranks models by noise as often as by skill: the best of
30 epochs (or of 6 search trials) is, on validation, ahead of the convex warm start (or of the
defaults) by chance alone. Breiman's one-standard-error rule keeps the simpler model unless the
other is ahead by more than the standard error of the difference. The difference here is paired
(both models score the same validation items), so its standard error is the spread of

    ``d* = m(scores[I], items[I]) - m(reference[I], items[I])``

over bootstrap resamples ``I`` of the validation items (drawn with replacement; resamples where
the metric is undefined, e.g. ROC-AUC with one class, are left out): any monitor, no normal
approximation to the metric itself. Efron and Tibshirani (1993), ch. 6; the rule: Breiman,
Friedman, Olshen and Stone (1984), sec. 3.4.3.

One comparison at one standard error leaves the reference by chance with probability
``P(Z > 1) = 16%`` (Z standard normal). A run compares each of its epochs with it (until
``patience`` stops it), a search each trial besides the first: the chance that one of ``m`` lucky
candidates gets past one standard error is far higher (``1 - 0.84^m`` for ``m`` independent
ones, 93% for 15; less for correlated epochs). :func:`family_margin` raises the margin so that
the family of ``m`` comparisons leaves the reference by chance at most as often as one
comparison (Bonferroni: ``P(Z > z) = P(Z > margin) / m``; 2.3 standard errors for 15 epochs at
a margin of 1).
"""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import torch
from torch import Tensor

from negev.engine.evaluation import classification_metrics
from negev.plugins import Example

__all__ = ["RESAMPLES", "beats_reference", "family_margin", "paired_bootstrap_se"]

#: Bootstrap resamples per comparison: the standard error to within ~7% (its relative
#: standard error is about 1 / sqrt(2 * RESAMPLES)), a fraction of a second on small splits.
RESAMPLES = 100


def family_margin(margin: float, comparisons: int) -> float:
    """The margin, in standard errors, that holds ``comparisons`` candidates against one reference
    to one comparison's chance of leaving it by luck at ``margin``: ``z`` with ``P(Z > z) =
    P(Z > margin) / comparisons`` (Bonferroni; Z standard normal). ``margin`` 0 (any gain) stays
    0; one comparison keeps ``margin``; a margin whose tail underflows (above ~37) is kept as
    it is, already beyond any gain a bootstrap can show."""
    if comparisons < 1:
        raise ValueError(f"comparisons must be >= 1, got {comparisons}")
    if margin == 0 or comparisons == 1:
        return margin
    chance = 0.5 * math.erfc(margin / math.sqrt(2.0)) / comparisons  # P(Z > margin) / m
    return -NormalDist().inv_cdf(chance) if chance > 0 else margin


def paired_bootstrap_se(
    scores: Tensor,
    reference: Tensor,
    examples: list[Example],
    num_classes: int,
    multilabel: bool,
    monitor: str,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of ``monitor(scores) - monitor(reference)`` on ``examples``.

    Args:
        scores, reference: class scores (N, C) of two models on the same N ``examples``.
        monitor: a key of :func:`~negev.engine.evaluation.classification_metrics`.
        seed: the resamples' generator (the same seed gives the same resamples).

    Returns:
        The standard deviation (ddof 1) of the paired difference over the resamples where it
        is defined; NaN when fewer than two are.
    """
    n = len(examples)
    if scores.shape != reference.shape or scores.shape[0] != n:
        raise ValueError(
            f"scores {tuple(scores.shape)} and reference {tuple(reference.shape)} must both be "
            f"(N, C) over the {n} examples"
        )
    if resamples < 2:
        raise ValueError(f"resamples must be >= 2, got {resamples}")
    generator = np.random.default_rng(seed)
    differences = []

    def value(part: Tensor, items: list[Example]) -> float:
        return classification_metrics(part, items, num_classes, multilabel, only=monitor)[monitor]

    with warnings.catch_warnings():  # a resample without some class: its F1 term is 0, quietly
        warnings.simplefilter("ignore")
        for _ in range(resamples):
            index = generator.integers(0, n, n)
            items = [examples[i] for i in index]
            rows = torch.from_numpy(index)
            a, b = value(scores[rows], items), value(reference[rows], items)
            if not (math.isnan(a) or math.isnan(b)):
                differences.append(a - b)
    return float(np.std(differences, ddof=1)) if len(differences) >= 2 else math.nan


def beats_reference(
    value: float,
    reference_value: float,
    scores: Tensor,
    reference: Tensor,
    examples: list[Example],
    num_classes: int,
    multilabel: bool,
    monitor: str,
    margin: float,
    seed: int = 0,
) -> bool:
    """Whether a model whose validation ``monitor`` is ``value`` replaces the reference (value
    ``reference_value``): ``value - reference_value > margin * SE`` (:func:`paired_bootstrap_se`
    of the two models' scores (N, C) on ``examples``). ``margin`` 0: simply higher. An undefined
    standard error (too few items) keeps the reference unless ``margin`` is 0."""
    if math.isnan(value):
        return False
    if math.isnan(reference_value):
        return True
    if margin == 0:
        return value > reference_value
    if not value > reference_value:
        return False
    se = paired_bootstrap_se(
        scores, reference, examples, num_classes, multilabel, monitor, seed=seed
    )
    return not math.isnan(se) and value - reference_value > margin * se
