"""scikit-learn estimators of MANTRA: linear region scorers with negative-evidence pooling.

A bag x (an input) is a set of regions h with features ``x_h`` (d,). The region score of output
k is ``z_kh = <w_k, x_h> + b_k`` and the bag score mixes the average of the region scores with
the negative-evidence pooling:

    s_k(x) = mix * mean_h z_kh
             + (1 - mix) * (mean(top kmax of z_k) + alpha * mean(bottom kmin of z_k))

``mix = 1`` is the linear model on bag means (``mean_h z_h = <w, mean_h x_h> + b``): with the
logistic loss, :class:`MantraClassifier` is then exactly logistic regression on the bag means, the
first baseline of every MIL practitioner; ``mix = 0`` is MANTRA's max+min (WELDON / WILDCAT with
other k). Training minimises ``1/(2 C n) ||W||^2 + mean loss`` (the objective of scikit-learn's
``LogisticRegression(C)`` divided by ``C n``): L-BFGS for the logistic loss, full-batch Adam
from random starts for the hinge losses and the ranker.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
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


def bag_means(bags: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(n, R, d) zero-padded bags and (n, R) bool mask -> (n, d) means of the valid regions."""
    return bags.sum(1) / valid.sum(1, keepdim=True).to(bags.dtype)


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

    def _bag_scores(
        self, bags: torch.Tensor, valid: torch.Tensor, weight, bias, mix: float = 0.0, means=None
    ) -> torch.Tensor:
        """(n, R, d) bags -> (n, K) bag scores: ``mix`` * average + (1 - ``mix``) * pooling.
        The average of the region scores is the score of the bag means (n, d) (``means``, or
        computed): ``mean_h <w, x_h> + b = <w, mean_h x_h> + b``."""
        out = 0.0
        if mix > 0:
            if means is None:
                means = bag_means(bags, valid)
            out = mix * (means @ weight.T + bias)
        if mix < 1:
            regions = (bags @ weight.T + bias).permute(0, 2, 1)  # (n, K, R)
            out = out + (1 - mix) * wildcat_pool(
                regions, self.kmax, self.kmin, self.alpha, mask=valid
            )
        return out

    def _fit_scores(self, X, mask, loss_fn, n_outputs: int) -> None:
        self._check_params()
        bags, valid = as_bags(X, mask)
        device = torch.device(self.device)
        bags_t = torch.as_tensor(bags, device=device)
        valid_t = torch.as_tensor(valid, device=device)
        rng = check_random_state(self.random_state)
        penalty = 1.0 / (2.0 * self.C * len(bags))

        def objective_of(weight, bias):
            scores = self._bag_scores(bags_t, valid_t, weight, bias)
            return loss_fn(scores) + penalty * weight.pow(2).sum()

        # The objective is not convex in W (the pooling picks latent regions): keep the best of
        # n_init runs from random starts, as k-means does.
        runs = [
            self._descend(bags_t, valid_t, objective_of, rng, n_outputs) for _ in range(self.n_init)
        ]
        best = min(runs, key=lambda run: run[0])
        self.objective_, weight, bias = best
        self.coef_ = weight.detach().cpu().numpy()
        self.intercept_ = bias.detach().cpu().numpy()
        self.n_features_in_ = bags.shape[2]

    def _descend(self, bags, valid, objective_of, rng, n_outputs: int):
        """One run of full-batch Adam from a random start on ``objective_of(weight, bias)``:
        (final objective, weight, bias)."""
        init = rng.normal(scale=0.01, size=(n_outputs, bags.shape[2]))
        weight = torch.tensor(init, device=bags.device, requires_grad=True)
        bias = torch.zeros(n_outputs, dtype=torch.float64, device=bags.device, requires_grad=True)
        optimizer = torch.optim.Adam([weight, bias], lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.max_iter)

        def objective() -> torch.Tensor:
            return objective_of(weight, bias)

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
                getattr(self, "mix_", 0.0),
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


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
MIX_GRID = (1.0, 0.5, 0.0)


class MantraClassifier(ClassifierMixin, _MantraBase):
    """Multiple-instance classifier: linear region scores, the bag-mean model mixed with
    max+min (or WELDON / WILDCAT) pooling, ``mix`` and ``C`` chosen on inner validation.

    Two classes: one scorer; more: one scorer per class. Losses: ``log`` (logistic /
    multinomial cross-entropy; ``mix=1`` is then ``LogisticRegression`` on the bag means, which
    the tests check) or ``hinge`` (binary hinge ``max(0, 1 - t s(x))``, multi-class structural
    hinge: MANTRA's).

    Defaults: every fit standardises the region features by the mean and standard deviation of
    its training bags' means (``scale``: with ``mix=1`` the model is then exactly the pipeline
    ``StandardScaler`` + ``LogisticRegression`` on bag means); then, on a stratified
    ``cv``-fold split of the training bags and by the lowest mean validation loss (log loss;
    error rate for the hinge), ``C`` in (0.01, 0.1, 1, 10, 100) is chosen for the bag-mean
    model (``mix=1``), and then ``mix`` in (1, 0.5, 0) at that C, the bag-mean model first on
    ties; the model is refitted on every training bag. A fixed ``mix`` / ``C`` skips its choice
    (a fixed ``mix`` is also the one C is chosen with). With the logistic loss a ``mix < 1`` fit
    starts from the ``mix = 1`` solution: negative evidence is learnt on top of the baseline.

    Args:
        kmax, kmin, alpha: the pooling, see :func:`negev.nn.functional.wildcat_pool`
            (max+min by default; ``kmin=0`` or ``alpha=0`` gives max-only).
        C: inverse regularisation strength as in scikit-learn, or ``"auto"``.
        mix: weight of the average in the bag score, in [0, 1], or ``"auto"``.
        loss: ``"log"`` or ``"hinge"``. scale: standardise the region features by the bag
            means' statistics (the fitted ``coef_`` / ``intercept_`` apply to the raw
            features). cv: inner folds (``StratifiedKFold(cv, shuffle=True, random_state)``).
        max_iter: L-BFGS iterations (log loss; 100 as in scikit-learn) or Adam steps (hinge).
        learning_rate, n_init: Adam's step size and random starts (hinge only; the best
            training objective is kept).
        random_state: seed of the inner folds and of the hinge's starts. device: where to train.

    Attributes (fitted): ``classes_``, ``coef_`` (K, d), ``intercept_`` (K,), ``C_``, ``mix_``,
    ``cv_results_`` (mean validation loss of each (C, mix) tried).

    ``fit(X, y, mask=None)``: X is (n_samples, n_regions, d) with an optional bool ``mask``
    (n_samples, n_regions), or a list of (n_regions_i, d) bags.
    """

    def __init__(
        self,
        kmax: float | int = 1,
        kmin: float | int | None = 1,
        alpha: float = 1.0,
        C: float | str = "auto",  # noqa: N803 - scikit-learn's name
        mix: float | str = "auto",
        loss: str = "log",
        scale: bool = True,
        cv: int = 5,
        max_iter: int = 100,
        learning_rate: float = 0.05,
        n_init: int = 5,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
    ):
        super().__init__(
            kmax, kmin, alpha, C, max_iter, learning_rate, n_init, random_state, device
        )
        self.mix = mix
        self.loss = loss
        self.scale = scale
        self.cv = cv

    def _check_params(self) -> None:
        check_count("kmax", self.kmax, allow_zero=False)
        check_count("kmin", self.kmax if self.kmin is None else self.kmin, allow_zero=True)
        check_finite_number("alpha", self.alpha)
        if self.C != "auto" and not (
            isinstance(self.C, int | float) and self.C > 0 and np.isfinite(self.C)
        ):
            raise ValueError(f"C must be a positive finite number or 'auto', got {self.C!r}")
        if self.mix != "auto" and not (isinstance(self.mix, int | float) and 0 <= self.mix <= 1):
            raise ValueError(f"mix must be a number in [0, 1] or 'auto', got {self.mix!r}")
        if self.loss not in ("log", "hinge"):
            raise ValueError(f"loss must be 'log' or 'hinge', got {self.loss!r}")
        for name, low in (("max_iter", 1), ("n_init", 1), ("cv", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    def fit(self, X, y, mask=None) -> MantraClassifier:
        self._check_params()
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise ValueError(f"y must be 1-D class labels, got shape {labels.shape}")
        n_bags = len(X)
        if len(labels) != n_bags:
            raise ValueError(f"X has {n_bags} bags but y has {len(labels)} labels")
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has one class only ({self.classes_[0]!r}); need at least two")
        bags, valid = as_bags(X, mask)
        device = torch.device(self.device)
        bags_t = torch.as_tensor(bags, device=device)
        valid_t = torch.as_tensor(valid, device=device)
        target = torch.as_tensor(encoded, device=device)
        cs = C_GRID if self.C == "auto" else (float(self.C),)
        mixes = MIX_GRID if self.mix == "auto" else (float(self.mix),)
        self.cv_results_ = {}
        split = None
        if len(cs) > 1 or len(mixes) > 1:
            folds = min(self.cv, int(np.bincount(encoded).min()))
            if folds < 2:
                raise ValueError("choosing C / mix needs two bags of each class; set C and mix")
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            split = list(splitter.split(bags, encoded))
        means_t = bag_means(bags_t, valid_t)
        data = (bags_t, valid_t, means_t, target)
        # C first, on the bag-mean model (convex, cheap), then the mix at that C
        self.C_ = cs[0] if len(cs) == 1 else self._choose(data, split, cs, mixes[:1])[0]
        self.mix_ = mixes[0] if len(mixes) == 1 else self._choose(data, split, (self.C_,), mixes)[1]
        weight, bias = self._fit_path(data, self.C_, (self.mix_,))[self.mix_]
        self.coef_ = weight.cpu().numpy()
        self.intercept_ = bias.cpu().numpy()
        self.n_features_in_ = bags.shape[2]
        return self

    def _choose(self, data, split, cs, mixes) -> tuple[float, float]:
        """The (C, mix) of lowest mean validation loss over the folds of ``split`` (recorded in
        ``cv_results_``); the first of ``mixes`` on ties."""
        losses: dict[tuple[float, float], list[float]] = {}
        for fit_rows, val_rows in split:
            fit_i, val_i = torch.as_tensor(fit_rows), torch.as_tensor(val_rows)
            for c in cs:
                fits = self._fit_path([part[fit_i] for part in data], c, mixes)
                bags, valid, means, target = (part[val_i] for part in data)
                for m, (weight, bias) in fits.items():
                    with torch.no_grad():
                        scores = self._bag_scores(bags, valid, weight, bias, m, means)
                        value = self._loss(scores, target, validation=True)
                    losses.setdefault((c, m), []).append(float(value))
        means = {key: float(np.mean(v)) for key, v in losses.items()}
        self.cv_results_.update(means)
        order = [(c, m) for m in mixes for c in cs]
        return min(order, key=lambda key: means[key])

    def _n_outputs(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _loss(self, scores: torch.Tensor, target: torch.Tensor, validation: bool = False):
        """Mean training loss of bag scores (n, K); the validation criterion if asked (the log
        loss, or the error rate of the hinge models)."""
        binary = scores.shape[1] == 1
        if self.loss == "log":
            if binary:
                return F.binary_cross_entropy_with_logits(scores[:, 0], target.to(scores.dtype))
            return F.cross_entropy(scores, target)
        if validation:
            guess = (scores[:, 0] > 0).long() if binary else scores.argmax(1)
            return (guess != target).double().mean()
        if binary:
            return mantra_multilabel_hinge_loss(scores[:, 0], target.to(scores.dtype))
        return mantra_hinge_loss(scores, target)

    def _fit_path(self, data, c: float, mixes) -> dict[float, tuple]:
        """(weight, bias) for each of ``mixes`` at this C. Logistic loss: L-BFGS, the ``mix=1``
        solution first (convex, from zero) and the start of every other mix. With ``scale`` the
        features are standardised by the statistics of these bags' means for the fit (as a
        StandardScaler in a pipeline); the weights returned apply to the raw features."""
        bags, valid, means, target = data
        shift = torch.zeros_like(means[0])
        factor = torch.ones_like(shift)
        if self.scale:
            shift, factor = means.mean(0), means.std(0, unbiased=False)
            factor = torch.where(factor > 1e-12, factor, torch.ones_like(factor))
            bags = torch.where(valid.unsqueeze(2), (bags - shift) / factor, 0.0)
            means = (means - shift) / factor
        penalty = 1.0 / (2.0 * c * len(bags))
        n_out, dim = self._n_outputs(), bags.shape[2]

        def objective(weight, bias, mix):
            scores = self._bag_scores(bags, valid, weight, bias, mix, means)
            return self._loss(scores, target) + penalty * weight.pow(2).sum()

        out = {}
        if self.loss == "hinge":
            rng = check_random_state(self.random_state)
            for mix in mixes:
                runs = [
                    self._descend(bags, valid, lambda w, b, m=mix: objective(w, b, m), rng, n_out)
                    for _ in range(self.n_init)
                ]
                out[mix] = min(runs, key=lambda run: run[0])[1:]
        else:
            zero = torch.zeros(n_out, dim, dtype=bags.dtype, device=bags.device)
            start = self._lbfgs(objective, zero, 1.0)
            for mix in mixes:
                out[mix] = start if mix == 1.0 else self._lbfgs(objective, start[0], mix, start[1])
        # z = <w, (x - shift) / factor> + b = <w / factor, x> + b - <w / factor, shift>
        return {
            mix: (weight / factor, bias - (weight / factor) @ shift)
            for mix, (weight, bias) in out.items()
        }

    def _lbfgs(self, objective, weight0, mix: float, bias0=None) -> tuple:
        weight = weight0.detach().clone().requires_grad_(True)
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        if bias0 is not None:
            bias = bias0.detach().clone()
        bias.requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [weight, bias],
            lr=1.0,
            max_iter=self.max_iter,
            history_size=20,
            tolerance_grad=1e-10,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )

        def closure():
            optimizer.zero_grad()
            value = objective(weight, bias, mix)
            value.backward()
            return value

        optimizer.step(closure)
        return weight.detach(), bias.detach()

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
