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
from random starts for the hinge losses and the ranker. Bags are packed (one table of regions,
see :mod:`negev.estimators._bags`): a region score is computed once per region, never for padding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted, check_random_state

from negev.estimators._bags import as_packed, padded_index
from negev.nn.functional import (
    ap_svm_loss,
    mantra_hinge_loss,
    mantra_multilabel_hinge_loss,
    wildcat_pool,
)
from negev.nn.functional._checks import check_count, check_finite_number

__all__ = ["MantraClassifier", "MantraRanker"]


class _Bags(NamedTuple):
    """Packed bags on a device (see :func:`~negev.estimators._bags.as_packed`).

    Attributes:
        regions: (N, d) the regions of every bag, bag after bag. lengths: (n,) int64 numpy.
        index: (n, R) int64 row of ``regions`` of each bag's regions (0 in the padding);
            valid: (n, R) bool. means: (n, d) each bag's mean region.
    """

    regions: torch.Tensor
    lengths: np.ndarray
    index: torch.Tensor
    valid: torch.Tensor
    means: torch.Tensor

    @classmethod
    def of(cls, regions, lengths: np.ndarray, device: torch.device) -> _Bags:
        regions = torch.as_tensor(regions, device=device)
        index, valid = padded_index(lengths)
        owner = torch.as_tensor(np.repeat(np.arange(len(lengths)), lengths), device=device)
        sums = regions.new_zeros(len(lengths), regions.shape[1]).index_add_(0, owner, regions)
        counts = torch.as_tensor(lengths, device=device, dtype=regions.dtype).unsqueeze(1)
        index_t, valid_t = (torch.as_tensor(a, device=device) for a in (index, valid))
        return cls(regions, lengths, index_t, valid_t, sums / counts)

    def take(self, rows: np.ndarray) -> _Bags:
        """The bags ``rows`` (indices into this set), packed anew."""
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        keep = np.concatenate([np.arange(starts[r], starts[r] + self.lengths[r]) for r in rows])
        keep_t = torch.as_tensor(keep, device=self.regions.device)
        return _Bags.of(self.regions[keep_t], self.lengths[rows], self.regions.device)

    def affine(self, shift: torch.Tensor, factor: torch.Tensor) -> _Bags:
        """Every region (and so every mean) mapped to ``(x - shift) / factor``."""
        return self._replace(
            regions=(self.regions - shift) / factor, means=(self.means - shift) / factor
        )


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

    def _bag_scores(self, bags: _Bags, weight, bias, mix: float = 0.0) -> torch.Tensor:
        """Packed bags -> (n, K) bag scores: ``mix`` * average + (1 - ``mix``) * pooling. The
        average of the region scores is the score of the bag means:
        ``mean_h <w, x_h> + b = <w, mean_h x_h> + b``."""
        out = 0.0
        if mix > 0:
            out = mix * (bags.means @ weight.T + bias)
        if mix < 1:
            regions = (bags.regions @ weight.T + bias)[bags.index].permute(0, 2, 1)  # (n, K, R)
            out = out + (1 - mix) * wildcat_pool(
                regions, self.kmax, self.kmin, self.alpha, mask=bags.valid
            )
        return out

    def _fit_scores(self, X, mask, loss_fn, n_outputs: int) -> None:
        self._check_params()
        regions, lengths = as_packed(X, mask)
        bags = _Bags.of(regions, lengths, torch.device(self.device))
        rng = check_random_state(self.random_state)
        penalty = 1.0 / (2.0 * self.C * len(lengths))

        def objective_of(weight, bias):
            scores = self._bag_scores(bags, weight, bias)
            return loss_fn(scores) + penalty * weight.pow(2).sum()

        # The objective is not convex in W (the pooling picks latent regions): keep the best of
        # n_init runs from random starts, as k-means does.
        runs = [self._descend(bags, objective_of, rng, n_outputs) for _ in range(self.n_init)]
        best = min(runs, key=lambda run: run[0])
        self.objective_, weight, bias = best
        self.coef_ = weight.detach().cpu().numpy()
        self.intercept_ = bias.detach().cpu().numpy()
        self.n_features_in_ = regions.shape[1]

    def _descend(self, bags: _Bags, objective_of, rng, n_outputs: int):
        """One run of full-batch Adam from a random start on ``objective_of(weight, bias)``:
        (final objective, weight, bias)."""
        device = bags.regions.device
        init = rng.normal(scale=0.01, size=(n_outputs, bags.regions.shape[1]))
        weight = torch.tensor(init, device=device, requires_grad=True)
        bias = torch.zeros(n_outputs, dtype=torch.float64, device=device, requires_grad=True)
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
        regions, lengths = as_packed(X, mask, n_features=self.n_features_in_)
        bags = _Bags.of(regions, lengths, torch.device("cpu"))
        weight, bias = torch.as_tensor(self.coef_), torch.as_tensor(self.intercept_)
        with torch.no_grad():
            scores = self._bag_scores(bags, weight, bias, getattr(self, "mix_", 0.0))
        return scores.numpy()

    def region_scores(self, X, mask=None) -> np.ndarray:
        """Per-region scores, the evidence: (n_samples, n_outputs, max_regions), NaN where masked.

        For a binary classifier or the ranker n_outputs is 1 and the axis is dropped:
        (n_samples, max_regions).
        """
        check_is_fitted(self, "coef_")
        regions, lengths = as_packed(X, mask, n_features=self.n_features_in_)
        index, valid = padded_index(lengths)
        packed_scores = regions @ self.coef_.T + self.intercept_  # (N, K)
        padded = np.where(valid[:, :, None], packed_scores[index], np.nan).transpose(0, 2, 1)
        if mask is not None:  # back to the caller's region positions
            out = np.full((len(lengths), padded.shape[1], np.shape(mask)[1]), np.nan)
            bag, position = np.nonzero(np.asarray(mask))
            out[bag, :, position] = packed_scores
            padded = out
        return padded[:, 0] if padded.shape[1] == 1 else padded


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
MIX_GRID = (1.0, 0.5, 0.0)  # the bag-mean model first: the simplest, kept on ties


class MantraClassifier(ClassifierMixin, _MantraBase):
    """Multiple-instance classifier: linear region scores, the bag-mean model mixed with
    max+min (or WELDON / WILDCAT) pooling, ``mix`` and ``C`` chosen on inner validation.

    Two classes: one scorer; more: one scorer per class. Losses: ``log`` (logistic /
    multinomial cross-entropy; ``mix=1`` is then ``LogisticRegression`` on the bag means, which
    the tests check) or ``hinge`` (binary hinge ``max(0, 1 - t s(x))``, multi-class structural
    hinge: MANTRA's).

    Defaults: the bag-mean model is the start and the fallback, negative evidence is added only
    where the inner validation shows it helps. Every fit standardises the region features by the
    mean and standard deviation of its training bags' means (``scale``: with ``mix=1`` the model
    is then exactly the pipeline ``StandardScaler`` + ``LogisticRegression`` on bag means). On a
    stratified ``cv``-fold split of the training bags (the bags given to ``fit``, nothing else):

    1. ``C`` in (0.01, 0.1, 1, 10, 100) is the one of lowest mean validation loss (log loss;
       error rate for the hinge) of the bag-mean model (``mix=1``), the choice of scikit-learn's
       ``GridSearchCV`` over that pipeline;
    2. at that C, each ``mix`` in (0.5, 0) is trained from the bag-mean solution (the convex fit,
       the warm start); the one of lowest mean validation loss replaces the bag-mean model only
       if it beats it by more than one standard error of its own fold losses (the
       one-standard-error rule of Hastie, Tibshirani, Friedman, *Elements of Statistical
       Learning*, 7.10, glmnet's ``lambda.1se``: with a handful of folds a smaller mean loss
       alone is mostly noise, and the simpler model is kept).

    The model is then refitted on every training bag, the chosen mix from the bag-mean fit at
    ``C_`` (``start_coef_``, ``start_intercept_``). A fixed ``mix`` / ``C`` skips its choice (a
    fixed ``mix`` is also the one C is chosen with).

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
    ``start_coef_`` / ``start_intercept_`` (the bag-mean fit at ``C_`` every other mix starts
    from; the log loss only), ``cv_results_`` (mean validation loss of each (C, mix) tried),
    ``cv_fold_losses_`` (the per-fold validation losses behind it).

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
        regions, lengths = as_packed(X, mask)
        device = torch.device(self.device)
        bags = _Bags.of(regions, lengths, device)
        target = torch.as_tensor(encoded, device=device)
        cs = C_GRID if self.C == "auto" else (float(self.C),)
        mixes = MIX_GRID if self.mix == "auto" else (float(self.mix),)
        self.cv_results_, self.cv_fold_losses_ = {}, {}
        split = None
        if len(cs) > 1 or len(mixes) > 1:
            folds = min(self.cv, int(np.bincount(encoded).min()))
            if folds < 2:
                raise ValueError("choosing C / mix needs two bags of each class; set C and mix")
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            split = list(splitter.split(np.zeros(n_bags), encoded))
        # C first, on the bag-mean model (convex, cheap), then the mix at that C
        if len(cs) == 1:
            self.C_ = cs[0]
        else:
            self._validate(bags, target, split, cs, mixes[:1])
            self.C_ = min(cs, key=lambda c: self.cv_results_[(c, mixes[0])])
        if len(mixes) == 1:
            self.mix_ = mixes[0]
        else:
            self._validate(bags, target, split, (self.C_,), mixes)
            self.mix_ = self._one_standard_error(self.C_, mixes)
        fits = self._fit_path(bags, target, self.C_, (self.mix_,))
        weight, bias = fits[self.mix_]
        self.coef_ = weight.cpu().numpy()
        self.intercept_ = bias.cpu().numpy()
        if "start" in fits:
            self.start_coef_, self.start_intercept_ = (t.cpu().numpy() for t in fits["start"])
        self.n_features_in_ = regions.shape[1]
        return self

    def _validate(self, bags: _Bags, target, split, cs, mixes) -> None:
        """Fit every (C, mix) on the fitting part of each fold of ``split`` and record its loss
        on the fold's validation part (``cv_fold_losses_``) and their mean (``cv_results_``);
        a (C, mix) already recorded is not fitted again."""
        done = set(self.cv_fold_losses_)
        for fit_rows, val_rows in split:
            fit_bags, val_bags = bags.take(fit_rows), bags.take(val_rows)
            fit_target, val_target = target[fit_rows], target[val_rows]
            for c in cs:
                for m, (weight, bias) in self._fit_path(fit_bags, fit_target, c, mixes).items():
                    if m == "start" or (c, m) in done:
                        continue
                    with torch.no_grad():
                        scores = self._bag_scores(val_bags, weight, bias, m)
                        value = float(self._loss(scores, val_target, validation=True))
                    self.cv_fold_losses_.setdefault((c, m), []).append(value)
        for key, values in self.cv_fold_losses_.items():
            self.cv_results_[key] = float(np.mean(values))

    def _one_standard_error(self, c: float, mixes) -> float:
        """The first of ``mixes`` (the simplest model) unless its mean validation loss exceeds
        the best mix's by more than the standard error of the best mix's fold losses (the rule
        of ESL 7.10 and of glmnet's ``lambda.1se``)."""
        best = min(mixes, key=lambda m: self.cv_results_[(c, m)])
        losses = np.array(self.cv_fold_losses_[(c, best)])
        error = losses.std(ddof=1) / np.sqrt(len(losses))
        return best if self.cv_results_[(c, mixes[0])] > losses.mean() + error else mixes[0]

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

    def _fit_path(self, bags: _Bags, target, c: float, mixes) -> dict:
        """mix -> (weight, bias) for each of ``mixes`` at this C, and (logistic loss) "start" ->
        the bag-mean solution: L-BFGS for ``mix=1`` first (convex, from zero), the start of
        every other mix. With ``scale`` the features are standardised by the statistics of these
        bags' means for the fit (as a StandardScaler in a pipeline); the weights returned apply
        to the raw features."""
        shift = torch.zeros_like(bags.means[0])
        factor = torch.ones_like(shift)
        if self.scale:
            shift, factor = bags.means.mean(0), bags.means.std(0, unbiased=False)
            factor = torch.where(factor > 1e-12, factor, torch.ones_like(factor))
            bags = bags.affine(shift, factor)
        penalty = 1.0 / (2.0 * c * len(bags.lengths))
        n_out, dim = self._n_outputs(), bags.regions.shape[1]

        def objective(weight, bias, mix):
            scores = self._bag_scores(bags, weight, bias, mix)
            return self._loss(scores, target) + penalty * weight.pow(2).sum()

        out = {}
        if self.loss == "hinge":
            rng = check_random_state(self.random_state)
            for mix in mixes:
                runs = [
                    self._descend(bags, lambda w, b, m=mix: objective(w, b, m), rng, n_out)
                    for _ in range(self.n_init)
                ]
                out[mix] = min(runs, key=lambda run: run[0])[1:]
        else:
            zero = torch.zeros(n_out, dim, dtype=bags.regions.dtype, device=bags.regions.device)
            out["start"] = self._lbfgs(objective, zero, 1.0)
            for mix in mixes:
                out[mix] = out["start"]
                if mix != 1.0:
                    out[mix] = self._lbfgs(objective, out["start"][0], mix, out["start"][1])
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
