"""Predictions and metrics of a trained model on a list of examples."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import Tensor

from negev.engine.data import BatchLoader, eval_plan, to_device
from negev.engine.model import EvidenceModel
from negev.engine.objectives import multi_hot
from negev.engine.precision import autocast
from negev.metrics import average_precision
from negev.plugins import Example, ModalityPlugin

__all__ = ["classification_metrics", "evidence_metrics", "predict", "to_device"]


@torch.no_grad()
def predict(
    model: EvidenceModel,
    plugin: ModalityPlugin,
    examples: list[Example],
    batch_size: int,
    device: torch.device,
    keep_maps: bool = False,
    *,
    loader: BatchLoader | None = None,
    split: str = "items",
    views: list[dict] | None = None,
    all_views: bool = True,
    precision: str = "fp32",
    workers: int = 0,
) -> tuple[Tensor, list[Tensor]]:
    """Class scores (N, C) on the CPU, and each example's class maps (C, *regions) if asked.

    Args:
        loader: a :class:`BatchLoader` that holds ``examples`` as ``split`` (a run's pool of
            workers); by default one is made for this call, with ``workers`` processes.
        views: the views of the items (:meth:`ModalityPlugin.test_views`) of a loader made for
            this call (default: the plain item). all_views: average the scores over all the
            loader's views (else the plain view only); the maps are those of the plain view.
        precision: autocast of the encoder (``fp32``, ``bf16``, ``fp16``).
    """
    model.eval()
    own = loader is None
    if own:
        num_classes = model.head.proj.out_features // model.head.class_wise.num_maps
        loader = BatchLoader(plugin, {split: examples}, num_classes, workers, device, views)
    count = len(loader.views) if all_views else 1
    try:
        total, maps = None, []
        for view in range(count):
            scores = []
            for batch in loader.batches(eval_plan(split, len(examples), batch_size, view)):
                with autocast(device, precision):
                    out = model(batch["inputs"])
                scores.append(out.scores.float().cpu())
                if keep_maps and view == 0:
                    maps.extend(m.float().cpu() for m in out.maps)
            joined = torch.cat(scores) if scores else torch.zeros(0, 0)
            total = joined if total is None else total + joined
    finally:
        if own:
            loader.close()
    return total / count, maps


def classification_metrics(
    scores: Tensor,
    examples: list[Example],
    num_classes: int,
    multilabel: bool,
    only: str | None = None,
) -> dict[str, float]:
    """Classification metrics of class scores ``scores`` (N, C) float.

    Multi-label data: mAP and ROC-AUC (means over the classes that have both labels) and
    ``accuracy``, the share of examples whose every class decision ``score > 0`` (probability
    > 0.5 under the BCE loss) matches its label (subset accuracy). Multi-class data: accuracy and
    macro-F1 of the argmax (over the classes the labels or the guesses hold, as scikit-learn's
    default: a class neither present nor guessed is not a 0), and ROC-AUC (two classes: of the
    score margin ``s_1 - s_0``; more: the mean one-vs-rest AUC of each class's score). Missing
    labels (``Example.unknown``) are left out of their class's metrics and of the decisions that
    accuracy checks. ``only``: that metric alone (the bootstrap of
    :mod:`negev.engine.selection` computes it hundreds of times).
    """
    # imported here: scikit-learn costs ~2 s of start-up to every command otherwise
    from sklearn.metrics import f1_score, roc_auc_score

    def wanted(name: str) -> bool:
        return only is None or only == name

    nan = float("nan")
    out: dict[str, float] = {}
    targets = multi_hot([e.labels for e in examples], num_classes, torch.device("cpu"))
    if multilabel:
        known = multi_hot([e.unknown for e in examples], num_classes, torch.device("cpu")) == 0
        aps, aucs = [], []
        for c in range(num_classes):
            truth, kept = targets[known[:, c], c], scores[known[:, c], c]
            if truth.numel() and 0 < truth.sum() < truth.numel():
                if wanted("mAP"):
                    aps.append(float(average_precision(kept, truth)))
                if wanted("roc_auc"):
                    aucs.append(float(roc_auc_score(truth.numpy(), kept.numpy())))
        if wanted("mAP"):
            out["mAP"] = float(np.mean(aps)) if aps else nan
        if wanted("roc_auc"):
            out["roc_auc"] = float(np.mean(aucs)) if aucs else nan
        if wanted("accuracy"):
            right = ((scores > 0) == (targets > 0)) | ~known
            out["accuracy"] = float(right.all(1).float().mean()) if len(examples) else nan
        return out
    truth = targets.argmax(1).numpy()
    guess = scores.argmax(1).numpy()
    if wanted("accuracy"):
        out["accuracy"] = float(np.mean(truth == guess))
    if wanted("macro_f1"):
        out["macro_f1"] = float(f1_score(truth, guess, average="macro"))
    if wanted("roc_auc"):
        if num_classes == 2:
            margin = (scores[:, 1] - scores[:, 0]).numpy()
            aucs = [roc_auc_score(truth, margin)] if 0 < truth.sum() < len(truth) else []
        else:
            aucs = [
                roc_auc_score(truth == c, scores[:, c].numpy())
                for c in range(num_classes)
                if 0 < (truth == c).sum() < len(truth)
            ]
        out["roc_auc"] = float(np.mean(aucs)) if aucs else nan
    return out


def evidence_metrics(
    plugin: ModalityPlugin,
    examples: list[Example],
    maps: list[Tensor],
    classes: list[str],
    scores: Tensor,
    model: EvidenceModel,
    multilabel: bool,
) -> dict[str, float]:
    """The plugin's evidence metrics. ``model`` (faithfulness metrics score modified inputs
    with it) and ``multilabel`` (how the model was trained) go to hooks whose signature takes
    them; hooks written without them are called as before."""
    taken = inspect.signature(plugin.evidence_metrics).parameters
    extra = {"model": model, "multilabel": multilabel}
    extra = {k: v for k, v in extra.items() if k in taken}
    return plugin.evidence_metrics(examples, maps, classes, scores, **extra)
