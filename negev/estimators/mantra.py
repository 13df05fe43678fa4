"""scikit-learn estimators of MANTRA: linear region scorers with negative-evidence pooling.

A bag x (an input) is a set of regions h with features ``x_h`` (d,). The region score of output
k is ``z_kh = <w_k, x_h> + b_k`` and the bag score pools them:
``s_k(x) = mean(top kmax of z_k) + alpha * mean(bottom kmin of z_k)`` (max+min by default).
Training minimises ``1/(2 C n) ||W||^2 + mean loss`` with full-batch Adam on the CPU (or any
device): the structural hinge for classification, the AP-SVM loss for ranking.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import average_precision_score
from sklearn.utils.validation import check_is_fitted, check_random_state

from negev.estimators._bags import as_bags
from negev.nn.functional import (
    ap_svm_loss,
    mantra_hinge_loss,
    mantra_multilabel_hinge_loss,
    wildcat_pool,
)
from negev.nn.functional._checks import check_count, check_finite_number

__all__ = ["MantraClassifier", "MantraRanker"]


class _MantraBase(BaseEstimator):
    """Shared parameters, training loop and scoring of the MANTRA estimators."""

    def __init__(
        self,
        kmax: float | int = 1,
        kmin: float | int | None = 1,
        alpha: float = 1.0,
        C: float = 1.0,  # noqa: N803 - scikit-learn's name
        max_iter: int = 300,
        learning_rate: float = 0.05,
        n_init: int = 5,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
    ):
        self.kmax = kmax
        self.kmin = kmin
        self.alpha = alpha
        self.C = C
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.random_state = random_state
        self.device = device

    def _check_params(self) -> None:
        check_count("kmax", self.kmax, allow_zero=False)
        check_count("kmin", self.kmax if self.kmin is None else self.kmin, allow_zero=True)
        check_finite_number("alpha", self.alpha)
        if not (isinstance(self.C, int | float) and self.C > 0 and np.isfinite(self.C)):
            raise ValueError(f"C must be a positive finite number, got {self.C!r}")
        for name in ("max_iter", "n_init"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    def _bag_scores(self, bags: torch.Tensor, valid: torch.Tensor, weight, bias) -> torch.Tensor:
        """(n, R, d) bags -> (n, K) pooled scores."""
        regions = (bags @ weight.T + bias).permute(0, 2, 1)  # (n, K, R)
        return wildcat_pool(regions, self.kmax, self.kmin, self.alpha, mask=valid)

    def _fit_scores(self, X, mask, loss_fn, n_outputs: int) -> None:
        self._check_params()
        bags, valid = as_bags(X, mask)
        device = torch.device(self.device)
        bags_t = torch.as_tensor(bags, device=device)
        valid_t = torch.as_tensor(valid, device=device)
        rng = check_random_state(self.random_state)
        penalty = 1.0 / (2.0 * self.C * len(bags))
        # The objective is not convex in W (the pooling picks latent regions): keep the best of
        # n_init runs from random starts, as k-means does.
        runs = [
            self._descend(bags_t, valid_t, loss_fn, penalty, rng, n_outputs)
            for _ in range(self.n_init)
        ]
        best = min(runs, key=lambda run: run[0])
        self.objective_, weight, bias = best
        self.coef_ = weight.detach().cpu().numpy()
        self.intercept_ = bias.detach().cpu().numpy()
        self.n_features_in_ = bags.shape[2]

    def _descend(self, bags, valid, loss_fn, penalty: float, rng, n_outputs: int):
        """One run of full-batch Adam from a random start: (final objective, weight, bias)."""
        init = rng.normal(scale=0.01, size=(n_outputs, bags.shape[2]))
        weight = torch.tensor(init, device=bags.device, requires_grad=True)
        bias = torch.zeros(n_outputs, dtype=torch.float64, device=bags.device, requires_grad=True)
        optimizer = torch.optim.Adam([weight, bias], lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.max_iter)

        def objective() -> torch.Tensor:
            scores = self._bag_scores(bags, valid, weight, bias)
            return loss_fn(scores) + penalty * weight.pow(2).sum()

        for _ in range(self.max_iter):
            optimizer.zero_grad()
            objective().backward()
            optimizer.step()
            schedule.step()
        with torch.no_grad():
            return objective().item(), weight.detach(), bias.detach()

    def _scores(self, X, mask=None) -> np.ndarray:
        check_is_fitted(self, "coef_")
        bags, valid = as_bags(X, mask, n_features=self.n_features_in_)
        with torch.no_grad():
            scores = self._bag_scores(
                torch.as_tensor(bags),
                torch.as_tensor(valid),
                torch.as_tensor(self.coef_),
                torch.as_tensor(self.intercept_),
            )
        return scores.numpy()

    def region_scores(self, X, mask=None) -> np.ndarray:
        """Per-region scores, the evidence: (n_samples, n_outputs, max_regions), NaN where masked.

        For a binary classifier or the ranker n_outputs is 1 and the axis is dropped:
        (n_samples, max_regions).
        """
        check_is_fitted(self, "coef_")
        bags, valid = as_bags(X, mask, n_features=self.n_features_in_)
        regions = np.einsum("nrd,kd->nkr", bags, self.coef_) + self.intercept_[None, :, None]
        regions = np.where(valid[:, None, :], regions, np.nan)
        return regions[:, 0] if regions.shape[1] == 1 else regions


class MantraClassifier(ClassifierMixin, _MantraBase):
    """Multiple-instance classifier with max+min (or WELDON/WILDCAT) pooling of region scores.

    Two classes: one scorer, binary hinge ``max(0, 1 - t s(x))``. More: one scorer per class,
    multi-class structural hinge (0/1 loss, margin 1).

    Args:
        kmax, kmin, alpha: pooling, see :func:`negev.nn.functional.wildcat_pool`
            (default max+min; ``kmin=0`` or ``alpha=0`` gives max-only).
        C: inverse regularisation strength, as in scikit-learn's SVMs.
        max_iter: full-batch optimisation steps. learning_rate: Adam's step size (cosine decay).
        n_init: random starts; the run with the lowest training objective is kept.
        random_state: seed of the initial weights. device: where training runs.

    ``fit(X, y, mask=None)``: X is (n_samples, n_regions, d) with an optional bool ``mask``
    (n_samples, n_regions), or a list of (n_regions_i, d) bags.
    """

    def fit(self, X, y, mask=None) -> MantraClassifier:
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise ValueError(f"y must be 1-D class labels, got shape {labels.shape}")
        n_bags = len(X)
        if len(labels) != n_bags:
            raise ValueError(f"X has {n_bags} bags but y has {len(labels)} labels")
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has one class only ({self.classes_[0]!r}); need at least two")
        target = torch.as_tensor(encoded, device=torch.device(self.device))
        if len(self.classes_) == 2:

            def loss_fn(scores):
                return mantra_multilabel_hinge_loss(scores[:, 0], target.double())

            self._fit_scores(X, mask, loss_fn, n_outputs=1)
        else:

            def loss_fn(scores):
                return mantra_hinge_loss(scores, target)

            self._fit_scores(X, mask, loss_fn, n_outputs=len(self.classes_))
        return self

    def decision_function(self, X, mask=None) -> np.ndarray:
        """Pooled scores: (n_samples,) for two classes (> 0 means classes_[1]), else
        (n_samples, n_classes)."""
        scores = self._scores(X, mask)
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X, mask=None) -> np.ndarray:
        """Predicted labels, (n_samples,)."""
        scores = self.decision_function(X, mask)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]


class MantraRanker(_MantraBase):
    """Multiple-instance ranker trained with the structured AP loss (exact inference).

    Same parameters as :class:`MantraClassifier`. ``fit(X, y, mask=None)`` with y binary
    relevance (two distinct values; the larger is relevant). ``decision_function`` ranks bags;
    ``score`` is the average precision of that ranking.
    """

    def fit(self, X, y, mask=None) -> MantraRanker:
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(X):
            raise ValueError(f"y must be 1-D with one label per bag, got shape {labels.shape}")
        self.classes_ = np.unique(labels)
        if len(self.classes_) != 2:
            raise ValueError(
                f"y must hold exactly two relevance values, got {len(self.classes_)}: "
                f"{self.classes_[:5].tolist()}"
            )
        relevant = torch.as_tensor(labels == self.classes_[1], device=torch.device(self.device))

        def loss_fn(scores):
            return ap_svm_loss(scores[:, 0], relevant)

        self._fit_scores(X, mask, loss_fn, n_outputs=1)
        return self

    def decision_function(self, X, mask=None) -> np.ndarray:
        """Ranking scores, (n_samples,): higher means more relevant."""
        return self._scores(X, mask)[:, 0]

    def score(self, X, y, mask=None) -> float:
        """Average precision of the ranking of X against relevance y."""
        return float(
            average_precision_score(
                np.asarray(y) == self.classes_[1], self.decision_function(X, mask)
            )
        )
