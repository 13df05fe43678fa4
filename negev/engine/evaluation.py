"""Predictions and metrics of a trained model on a list of examples."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch import Tensor

from negev.engine.model import EvidenceModel
from negev.engine.objectives import multi_hot
from negev.metrics import average_precision
from negev.plugins import Example, ModalityPlugin

__all__ = ["classification_metrics", "predict"]


@torch.no_grad()
def predict(
    model: EvidenceModel,
    plugin: ModalityPlugin,
    examples: list[Example],
    batch_size: int,
    device: torch.device,
    keep_maps: bool = False,
) -> tuple[Tensor, list[Tensor]]:
    """Class scores (N, C) on the CPU, and each example's class maps (C, *regions) if asked."""
    model.eval()
    scores, maps = [], []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        inputs = to_device(plugin.collate(chunk), device)
        out = model(inputs)
        scores.append(out.scores.float().cpu())
        if keep_maps:
            maps.extend(m.float().cpu() for m in out.maps)
    return torch.cat(scores), maps


def classification_metrics(
    scores: Tensor, examples: list[Example], num_classes: int, multilabel: bool
) -> dict[str, float]:
    """Classification metrics of class scores ``scores`` (N, C) float.

    Multi-label data: mAP and ROC-AUC (means over the classes that have both labels) and
    ``accuracy``, the share of examples whose every class decision ``score > 0`` (probability
    > 0.5 under the BCE loss) matches its label (subset accuracy). Multi-class data: accuracy and
    macro-F1 of the argmax. Missing labels (``Example.unknown``) are left out of their class's
    metrics and of the decisions that accuracy checks.
    """
    targets = multi_hot([e.labels for e in examples], num_classes, torch.device("cpu"))
    if multilabel:
        known = multi_hot([e.unknown for e in examples], num_classes, torch.device("cpu")) == 0
        aps, aucs = [], []
        for c in range(num_classes):
            truth, kept = targets[known[:, c], c], scores[known[:, c], c]
            if truth.numel() and 0 < truth.sum() < truth.numel():
                aps.append(float(average_precision(kept, truth)))
                aucs.append(float(roc_auc_score(truth.numpy(), kept.numpy())))
        right = ((scores > 0) == (targets > 0)) | ~known
        nan = float("nan")
        return {
            "mAP": float(np.mean(aps)) if aps else nan,
            "roc_auc": float(np.mean(aucs)) if aucs else nan,
            "accuracy": float(right.all(1).float().mean()) if len(examples) else nan,
        }
    truth = targets.argmax(1).numpy()
    guess = scores.argmax(1).numpy()
    return {
        "accuracy": float(np.mean(truth == guess)),
        "macro_f1": float(f1_score(truth, guess, average="macro", labels=range(num_classes))),
    }


def to_device(inputs, device: torch.device):
    """Move every tensor of a (possibly nested) dict/list/tuple to ``device``."""
    if isinstance(inputs, Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, list | tuple):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs
