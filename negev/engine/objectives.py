"""Training losses by name, exact over the global batch under data parallelism."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from negev.engine.distributed import World, gather_with_grad
from negev.nn.functional import ap_svm_loss, mantra_hinge_loss, mantra_multilabel_hinge_loss

__all__ = ["default_loss", "training_loss"]


def default_loss(multilabel: bool) -> str:
    return "bce" if multilabel else "ce"


def training_loss(
    name: str,
    scores: Tensor,
    targets: Tensor,
    multilabel: bool,
    world: World,
    global_size: int,
    known: Tensor | None = None,
) -> Tensor:
    """The loss of this rank's share of a global batch.

    Args:
        scores: (b, C) this rank's class scores. targets: (b, C) multi-hot (float).
        global_size: the number of samples in the global batch.
        known: (b, C) float, 0 where a label is missing (multi-label losses average over the
            known labels of each sample); None when every label is known.

    Per-sample losses are summed and divided by ``global_size`` then multiplied by the world size,
    so that DDP's gradient averaging gives exactly the gradient of the global-batch mean. The AP
    loss ranks the whole global batch: scores are gathered from every rank with their gradient.
    """
    if known is not None and (name in ("ap", "ce") or not multilabel):
        raise ValueError(f"loss {name!r} does not support missing labels; use 'bce' or 'mantra'")
    if name == "ap":
        every_score = gather_with_grad(scores, world)
        every_target = gather_with_grad(targets, world)
        # every rank computes the same global loss; the gather's backward sums the ranks'
        # gradients, DDP averages them: the result is the gradient of the global loss
        return ap_svm_loss(every_score, every_target > 0.5)
    if name == "bce":
        per_sample = _known_mean(
            F.binary_cross_entropy_with_logits(scores, targets, reduction="none"), known
        )
    elif name == "ce":
        if multilabel:
            raise ValueError("loss 'ce' needs single-label data; use 'bce' for multi-label data")
        per_sample = F.cross_entropy(scores, targets.argmax(1), reduction="none")
    elif name == "mantra":
        if multilabel:
            hinge = mantra_multilabel_hinge_loss(scores, targets, reduction="none")
            per_sample = _known_mean(hinge, known)
        else:
            per_sample = mantra_hinge_loss(scores, targets.argmax(1), reduction="none")
    else:
        raise ValueError(f"unknown loss {name!r}")
    return per_sample.sum() * (world.size / global_size)


def _known_mean(losses: Tensor, known: Tensor | None) -> Tensor:
    """(b, C) -> (b,): mean over the known labels of each sample (0 for a sample with none)."""
    if known is None:
        return losses.mean(1)
    return (losses * known).sum(1) / known.sum(1).clamp(min=1)


def multi_hot(labels: list[tuple[int, ...]], num_classes: int, device: torch.device) -> Tensor:
    """(B, C) float targets from each example's class indices."""
    targets = torch.zeros(len(labels), num_classes, device=device)
    for row, classes in enumerate(labels):
        targets[row, list(classes)] = 1.0
    return targets
