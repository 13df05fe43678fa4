"""Predictions and metrics of a trained model on a list of examples."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import Tensor

from negev.engine.model import EvidenceModel
from negev.engine.objectives import multi_hot
from negev.metrics import mean_average_precision
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
    """mAP for multi-label data, accuracy and macro-F1 for multi-class data."""
    targets = multi_hot([e.labels for e in examples], num_classes, torch.device("cpu"))
    if multilabel:
        return {"mAP": float(mean_average_precision(scores, targets))}
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
