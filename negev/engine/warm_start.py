"""Convex warm start of a model's linear path: the practitioner's linear baseline as epoch 0.

When each region's feature is one row of a learned table (a hashed embedding:
:meth:`~negev.plugins.RegionEncoder.row_table`) and the pooling has a linear term
(:class:`~negev.nn.LinearEvidencePool`: ``bias + sum_r z_r`` or ``bias + mean_r z_r``, plus a
gated negative-evidence term), the model's class score with the gate at 0 is

    ``y_c = b_c + sum_i x_i W[i, c]``,  ``W = table @ proj_c``,  ``x`` = the pooled rows

(``x_i``: how many regions of the item fall in row ``i``, divided by the item's region count for a
mean): a linear model on count features. :func:`linear_warm_start` fits that model convexly
(scikit-learn's L2 logistic regression, ``C * sum(log-loss) + ||W||^2 / 2``, intercept not
penalised; one binary model per class on multi-label data, the multinomial model on single-label
data, a binary one written as ``+-w / 2`` for two classes; a mean's features times the training
items' mean region count, so that C keeps its meaning for counts; each row's count times its
inverse document frequency when the encoder asks for it, :attr:`RegionEncoder.row_idf`; each
item's row divided by its weighted length under :attr:`RegionEncoder.row_norm`), picks
``C`` from :data:`C_GRID` by the validation value of the run's monitor (ties: the smaller C), and
writes it into the model exactly (``table = U S``, projection rows ``V`` from the SVD of ``W``;
the gate at 0). The engine keeps that model as epoch 0, so best-epoch selection never returns a
model below the convex fit on validation. Only the train and validation splits are read.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from negev.engine.data import BatchLoader, eval_plan
from negev.engine.evaluation import classification_metrics
from negev.plugins import DataSplits

__all__ = [
    "C_GRID",
    "WarmStart",
    "fit_row_weights",
    "inverse_document_frequency",
    "linear_warm_start",
    "pooled_rows",
]

#: Inverse L2 strengths tried, 10^-3 .. 10^2 in half decades (the usual range of a tuned
#: logistic regression on count or TF-IDF features; a mean linear term's features are scaled
#: back to counts first, see :func:`linear_warm_start`).
C_GRID = tuple(float(10 ** (e / 2)) for e in range(-6, 5))


@dataclass
class WarmStart:
    """The fit written into the model: its ``C``, the validation ``value`` of the monitor, and
    the value of every C tried."""

    C: float
    value: float
    values: dict[float, float] = field(default_factory=dict)


def applies(model: torch.nn.Module) -> bool:
    """Whether the model has a linear path to fit: a table encoder under a linear-term pooling."""
    return _linear_term(model) is not None and model.encoder.row_table() is not None


def pooled_rows(
    model: torch.nn.Module, loader: BatchLoader, split: str, count: int, batch_size: int
):
    """The linear term's features of a split, in order: a scipy CSR matrix (N, F), row counts
    (divided by the item's region count when the pooling's linear term is a mean), the targets
    (N, C) and known-label mask (N, C), and each item's region count (N,), as numpy arrays."""
    from scipy import sparse

    encoder = model.encoder
    size = encoder.row_table().shape[0]
    mean = _linear_term(model) == "mean"
    items, columns, weights, targets, known, regions = [], [], [], [], [], []
    offset = 0
    with torch.no_grad():
        for batch in loader.batches(eval_plan(split, count, batch_size)):
            rows, mask = encoder.region_rows(batch["inputs"])
            rows = rows.flatten(1).cpu()
            mask = torch.ones_like(rows, dtype=torch.bool) if mask is None else mask.flatten(1)
            mask = mask.cpu()
            item, region = mask.nonzero(as_tuple=True)
            count = mask.sum(1).double()
            regions.append(count.numpy())
            share = 1.0 / count.clamp_min(1) if mean else torch.ones(len(rows))
            items.append((item + offset).numpy())
            columns.append(rows[item, region].numpy())
            weights.append(share.double()[item].numpy())
            targets.append(batch["targets"].cpu().numpy())
            known.append(
                np.ones_like(targets[-1]) if batch["known"] is None
                else batch["known"].cpu().numpy()
            )  # fmt: skip
            offset += len(rows)
    # duplicate (item, row) entries add up: the counts
    x = sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(items), np.concatenate(columns))),
        shape=(offset, size),
    )
    return x, np.concatenate(targets), np.concatenate(known) > 0, np.concatenate(regions)


def inverse_document_frequency(x) -> np.ndarray:
    """(F,) ``ln((1 + n) / (1 + df_i)) + 1`` of a CSR matrix (n, F) of row counts, ``df_i`` the
    number of items whose row ``i`` is nonzero (scikit-learn's ``TfidfTransformer(
    smooth_idf=True)``)."""
    present = np.bincount(x.nonzero()[1], minlength=x.shape[1])
    return np.log((1.0 + x.shape[0]) / (1.0 + present)) + 1.0


def _fit(x, targets: np.ndarray, known: np.ndarray, multilabel: bool, c: float, seed: int):
    """The L2 logistic regression at ``c`` in the model's class layout: W (F, C), b (C,)."""
    from sklearn.linear_model import LogisticRegression

    features, classes = x.shape[1], targets.shape[1]
    weights, bias = np.zeros((features, classes)), np.zeros(classes)

    def model() -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=5000, tol=1e-6, random_state=seed)

    if multilabel:
        for k in range(classes):
            rows, y = known[:, k], targets[known[:, k], k]
            if len(np.unique(y)) < 2:  # one label seen: its log-odds, clipped
                share = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
                bias[k] = math.log(share / (1 - share))
                continue
            fitted = model().fit(x[rows], y)
            weights[:, k], bias[k] = fitted.coef_[0], fitted.intercept_[0]
        return weights, bias
    labels = targets.argmax(1)
    seen = np.unique(labels)
    fitted = model().fit(x, labels)
    if len(seen) == 2:  # one vector w: the scores +-w/2 have the same softmax
        low, high = seen
        weights[:, high], bias[high] = fitted.coef_[0] / 2, fitted.intercept_[0] / 2
        weights[:, low], bias[low] = -fitted.coef_[0] / 2, -fitted.intercept_[0] / 2
        return weights, bias
    weights[:, seen], bias[seen] = fitted.coef_.T, fitted.intercept_
    unseen = np.setdiff1d(np.arange(classes), seen)
    bias[unseen] = fitted.intercept_.min() - 10.0  # a class never seen in training
    return weights, bias


def linear_warm_start(
    model: torch.nn.Module,
    loader: BatchLoader,
    data: DataSplits,
    monitor: str,
    batch_size: int,
    seed: int = 0,
    grid: tuple[float, ...] = C_GRID,
) -> WarmStart | None:
    """Fit the model's linear path (module docstring) on ``data.train``, choose C on
    ``data.val`` by ``monitor`` (a key of :func:`~negev.engine.evaluation.classification_metrics`)
    and write the fit into ``model``. ``loader`` serves the ``train`` and ``val`` splits. None
    when the model has no linear path (:func:`applies`: the model untouched) or the training
    split has a single class (the model untouched but for a ``row_norm`` encoder's row
    weights, fitted first).

    A mean linear term's features (counts / R) are fitted times the training items' mean
    region count r, so that C means what it means for counts (the same fit on counts / R needs
    a C about r^2 times as large); the weights written are r times the fit's. Under
    :attr:`~negev.plugins.RegionEncoder.row_idf` the features are also weighted by
    :func:`inverse_document_frequency` of the training split, and so are the weights written.
    Under :attr:`~negev.plugins.RegionEncoder.row_norm` each item's features are divided by its
    length, and the encoder given its row weights and reference length (:func:`fit_row_weights`)
    before the fit; the weights written are over that reference, which the encoder's features
    carry."""
    from scipy import sparse

    if not applies(model):
        return None
    num_classes = len(data.classes)
    x, targets, known, regions = pooled_rows(model, loader, "train", len(data.train), batch_size)
    term = _linear_term(model)
    mean = term == "mean"
    row_weights = _row_weights(model.encoder, x)
    normed = getattr(model.encoder, "row_norm", False)
    if normed:
        lengths, reference, norm_weights = _fit_norm(model.encoder, x, regions, term, row_weights)
    if not data.multilabel and len(np.unique(targets.argmax(1))) < 2:
        return None
    x_val, _, _, regions_val = pooled_rows(model, loader, "val", len(data.val), batch_size)
    scale = max(1.0, float(regions.mean())) if mean else 1.0
    weight = scale * row_weights
    written = weight / reference if normed else weight  # the encoder's features carry the mean
    if normed:
        x = _per_length(x, lengths)
        x_val = _per_length(x_val, _lengths(x_val, regions_val, mean, norm_weights))
    x, x_val = x @ sparse.diags(weight), x_val @ sparse.diags(weight)
    # Rows no training item has get weight 0 at the L2 optimum: fit on the others only (a
    # hashed table of 2^20 rows holds a few percent of them on a data set of thousands of items;
    # the solver's every step is that much cheaper, and its result the same).
    used = np.unique(x.nonzero()[1])
    x, x_val = x[:, used], x_val[:, used]
    fits, values = {}, {}
    for c in grid:
        fits[c] = _fit(x, targets, known, data.multilabel, c, seed)
        scores = torch.from_numpy(np.asarray(x_val @ fits[c][0]) + fits[c][1]).float()
        values[c] = classification_metrics(scores, data.val, num_classes, data.multilabel)[monitor]
    chosen = max(grid, key=lambda c: (-math.inf if math.isnan(values[c]) else values[c], -c))
    fitted, bias = fits[chosen]
    weights = np.zeros((len(weight), fitted.shape[1]))
    weights[used] = fitted * written[used, None]
    write_linear(model, torch.from_numpy(weights), torch.from_numpy(bias))
    return WarmStart(chosen, values[chosen], values)


def fit_row_weights(
    model: torch.nn.Module, loader: BatchLoader, count: int, batch_size: int
) -> None:
    """Give a :attr:`~negev.plugins.RegionEncoder.row_norm` encoder its row weights and
    reference length from the ``train`` split that ``loader`` serves (``count`` items), as
    :func:`linear_warm_start` does before its fit: for a model trained without one."""
    x, _, _, regions = pooled_rows(model, loader, "train", count, batch_size)
    _fit_norm(model.encoder, x, regions, _linear_term(model), _row_weights(model.encoder, x))


def _linear_term(model: torch.nn.Module) -> str | None:
    """The pooling's linear term, ``"sum"`` or ``"mean"``; None for a pooling without one."""
    return getattr(model.head.pool, "linear_term", None)


def _fit_norm(
    encoder: torch.nn.Module, x, regions: np.ndarray, term: str | None, weights: np.ndarray
):
    """Set a ``row_norm`` encoder's row weights (``weights``, 0 for rows none of the training
    items' pooled rows ``x`` (N, F) has) and its reference length ``l_ref``; returns the items'
    lengths (N,), the reference and the row weights.

    ``l_ref`` is the training items' mean of ``l / n`` when the pooling's linear ``term`` sums
    the regions (``n`` an item's region count), else of ``l`` (items of length 0 left out). An
    item's features are multiplied by ``l_ref / l``, so its scaled regions weigh ``n l_ref / l``
    in a sum and ``l_ref / l`` in an average: 1 for an item of typical ``l / n`` (``l``), so
    the size of an optimizer step's effect does not grow with the items' typical length. With
    ``l_ref`` the mean ``l``, a sum weighed each item's regions about ``n`` times, and one AdamW
    step at lr 0.01 from the warm start moved the logit of a 1,100-window speech by about 20
    through the table. (Items of other ``l / n`` still move more or less: a long text of many
    distinct n-grams, about 5 times a short one's in ``test_warm_start_text.py``.)"""
    norm_weights = np.where(np.bincount(x.nonzero()[1], minlength=x.shape[1]) > 0, weights, 0.0)
    lengths = _lengths(x, regions, term == "mean", norm_weights)
    used = lengths > 0
    per_region = lengths[used] / (np.maximum(regions[used], 1.0) if term == "sum" else 1.0)
    reference = float(per_region.mean()) if used.any() else 1.0
    encoder.set_row_weights(torch.from_numpy(norm_weights), reference)
    return lengths, reference, norm_weights


def _row_weights(encoder: torch.nn.Module, x) -> np.ndarray:
    """(F,) each row's weight, from the training items' row counts ``x`` (N, F): its
    :func:`inverse_document_frequency` under ``row_idf``, else 1."""
    if getattr(encoder, "row_idf", False):
        return inverse_document_frequency(x)
    return np.ones(x.shape[1])


def _lengths(x, regions: np.ndarray, mean: bool, row_weights: np.ndarray) -> np.ndarray:
    """(N,) each item's :func:`~negev.nn.functional.row_count_norm` from its pooled rows ``x``
    (N, F) (times its region count under a mean: its counts)."""
    from scipy import sparse

    counts = sparse.diags(np.maximum(regions, 1.0)) @ x if mean else x
    return np.sqrt(np.asarray((counts @ sparse.diags(row_weights)).power(2).sum(1)).ravel())


def _per_length(x, lengths: np.ndarray):
    """The rows of ``x`` (N, F) over their items' ``lengths``; an item of length 0 unchanged."""
    from scipy import sparse

    return sparse.diags(np.where(lengths > 0, 1.0 / np.maximum(lengths, 1e-300), 1.0)) @ x


@torch.no_grad()
def write_linear(model: torch.nn.Module, weights: Tensor, bias: Tensor) -> None:
    """Make the model's class score ``bias + sum_i x_i weights[i]`` (weights (F, C), bias (C,)),
    the gate of its negative-evidence term at 0: the row table becomes ``U S`` and each class's
    projection rows ``V[c]`` (``weights = U S V^T``); exact when the feature width D >= C,
    otherwise the best rank-D approximation (with a warning)."""
    encoder, head = model.encoder, model.head
    table = encoder.row_table()
    width, classes = table.shape[1], weights.shape[1]
    u, s, vh = torch.linalg.svd(weights.double(), full_matrices=False)  # (F, k), (k,), (k, C)
    rank = min(width, len(s))
    if rank < len(s) and bool(s[rank:].abs().max() > 1e-9 * s.max()):
        warnings.warn(
            f"warm start: {classes} classes through {width} features: the linear fit is "
            f"approximated at rank {width} (raise the feature width to fit it exactly)",
            stacklevel=3,
        )
    table.zero_()
    table[:, :rank] = (u[:, :rank] * s[:rank]).to(table)
    maps = head.class_wise.num_maps
    projection = torch.zeros_like(head.proj.weight)  # (C * M, D), map (c, m) at row c * M + m
    projection[:, :rank] = vh[:rank].T.repeat_interleave(maps, dim=0).to(projection)
    head.proj.weight.copy_(projection)
    head.proj.bias.zero_()
    rows = head.pool_classes // classes  # each class's bias on each of its maps' rows
    head.pool.start_linear(bias.float().repeat_interleave(rows))
