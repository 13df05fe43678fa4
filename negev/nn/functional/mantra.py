"""MANTRA hinge losses on pooled class scores (latent structured SVM with max+min scoring).

With max+min (WELDON, WILDCAT) pooling the class score is
``max_h <w, Psi(x, y, h)> + min_h <w, Psi(x, y, h)>``; these losses are the structural hinge on
those scores: multi-class with the 0/1 loss (margin 1), and one-vs-rest binary for multi-label.
"""

from __future__ import annotations

import torch
from torch import Tensor

from negev.nn.functional._checks import check_binary, check_class_indices

__all__ = ["mantra_hinge_loss", "mantra_multilabel_hinge_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def mantra_hinge_loss(
    scores: Tensor, targets: Tensor, reduction: str = "mean", *, validate_args: bool = True
) -> Tensor:
    """Multi-class structural hinge: ``max(0, max_{y != y*} (1 + s_y) - s_{y*})`` per sample.

    Args:
        scores: (B, C) float pooled class scores, C >= 2.
        targets: (B,) int64 class indices in [0, C).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` ((B,)).
        validate_args: check that the targets are class indices in [0, C) (a host
            synchronisation); ``False`` runs without any.

    Returns:
        The loss, dtype of ``scores``.
    """
    _check_reduction(reduction)
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must have shape (B, C) with C >= 2, got {tuple(scores.shape)}")
    if targets.shape != scores.shape[:1] or targets.dtype in (torch.bool, *_FLOATS):
        raise ValueError(
            f"targets must be (B,) = {tuple(scores.shape[:1])} integer class indices, "
            f"got shape {tuple(targets.shape)} dtype {targets.dtype}"
        )
    if validate_args:
        check_class_indices(targets, scores.shape[1])
    true = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    augmented = (scores + 1.0).scatter(1, targets.unsqueeze(1), float("-inf"))
    loss = (augmented.amax(1, keepdim=True) - true).clamp(min=0).squeeze(1)
    return _reduce(loss, reduction)


def mantra_multilabel_hinge_loss(
    scores: Tensor, targets: Tensor, reduction: str = "mean", *, validate_args: bool = True
) -> Tensor:
    """One-vs-rest binary hinge ``max(0, 1 - t s)`` with ``t = +1`` for a present class, else -1.

    Args:
        scores: (B, C) float. targets: (B, C) in {0, 1} (bool, int or float).
        reduction: ``"mean"`` (over all B*C entries), ``"sum"`` or ``"none"`` ((B, C)).
        validate_args: check that the targets are 0 or 1 (a host synchronisation); ``False``
            runs without any.
    """
    _check_reduction(reduction)
    if targets.shape != scores.shape:
        raise ValueError(
            f"targets must have the shape of scores {tuple(scores.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if validate_args:
        check_binary(targets)
    sign = targets.to(scores.dtype) * 2 - 1
    return _reduce((1 - sign * scores).clamp(min=0), reduction)


_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
