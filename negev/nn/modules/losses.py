"""Loss modules with one signature: ``loss(scores, targets, known=None)``.

* ``scores``: (N, C) float class scores.
* ``targets``: (N, C) multi-hot in {0, 1} (bool, int or float); the single-label losses also take
  (N,) int64 class indices (a one-hot row is read as its index).
* ``known``: (N, C) bool or {0, 1} float, False where a label is missing, or None (all known).
  Only the losses whose ``supports_known`` is True accept it; the others raise when it is given.

Label-wise losses (``BCEWithLogitsLoss``, ``MantraMultiLabelHingeLoss``) average each sample over
its known labels (a sample with none counts 0), then reduce over samples: ``"mean"``, ``"sum"``,
or ``"none"`` for the (N, C) element losses (0 where unknown). Single-label losses give (N,) with
``"none"``. ``APSVMLoss`` ranks the samples of each class: it couples the samples of the batch
(``couples_samples``), and ``"none"`` gives one loss per class.

Each loss takes ``validate_args`` (default True, as in torchmetrics; an attribute that can be
changed later): True checks the values of the targets (0 or 1; one-hot rows or class indices in
[0, C) for the single-label losses), one host read per call; False skips them, so that the forward
and backward passes run without any host synchronisation. The exception is ``APSVMLoss`` off
its fused GPU path (float64 scores, the CPU, no Triton): its exact search then reads the number of
positives of each class on the host, whatever ``validate_args``.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from negev.nn.functional import ap_svm_loss, mantra_hinge_loss, mantra_multilabel_hinge_loss
from negev.nn.functional._checks import check_binary, check_class_indices, check_one_hot

__all__ = [
    "APSVMLoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "MantraHingeLoss",
    "MantraMultiLabelHingeLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(nn.Module):
    """Shared by the losses: the reduction, ``validate_args``, and the capabilities the engine
    reads."""

    supports_known: ClassVar[bool] = False
    couples_samples: ClassVar[bool] = False

    def __init__(self, reduction: str = "mean", *, validate_args: bool = True):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.validate_args = validate_args

    def _no_known(self, known: Tensor | None) -> None:
        if known is not None:
            raise ValueError(f"{type(self).__name__} does not support missing labels (known)")

    def _reduce(self, losses: Tensor) -> Tensor:
        if self.reduction == "none":
            return losses
        return losses.sum() if self.reduction == "sum" else losses.mean()

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _LabelwiseLoss(_Loss):
    """A loss per (sample, class) element, averaged over each sample's known labels."""

    supports_known = True

    def element_losses(self, scores: Tensor, targets: Tensor) -> Tensor:
        """(N, C) scores and multi-hot targets (values checked) -> (N, C) losses."""
        raise NotImplementedError

    def forward(self, scores: Tensor, targets: Tensor, known: Tensor | None = None) -> Tensor:
        if self.validate_args:
            check_binary(targets)
        losses = self.element_losses(scores, targets)
        if known is not None:
            known = known.to(losses.dtype)
        if self.reduction == "none":
            return losses if known is None else losses * known
        if known is None:
            per_sample = losses.mean(1)
        else:
            per_sample = (losses * known).sum(1) / known.sum(1).clamp(min=1)
        return self._reduce(per_sample)


class _SingleLabelLoss(_Loss):
    """A loss per sample from its class index."""

    def sample_losses(self, scores: Tensor, indices: Tensor) -> Tensor:
        """(N, C) scores and (N,) int64 class indices (values checked) -> (N,) losses."""
        raise NotImplementedError

    def forward(self, scores: Tensor, targets: Tensor, known: Tensor | None = None) -> Tensor:
        self._no_known(known)
        if targets.dim() == 2:
            if self.validate_args:
                check_one_hot(targets)
            indices = targets.argmax(1)
        else:
            if self.validate_args:
                check_class_indices(targets, scores.shape[-1])
            indices = targets
        return self._reduce(self.sample_losses(scores, indices))


class BCEWithLogitsLoss(_LabelwiseLoss):
    """Binary cross-entropy on logits per label:
    ``-(t log sigmoid(s) + (1 - t) log sigmoid(-s))``."""

    def element_losses(self, scores: Tensor, targets: Tensor) -> Tensor:
        targets = targets.to(scores.dtype)
        return F.binary_cross_entropy_with_logits(scores, targets, reduction="none")


class MantraMultiLabelHingeLoss(_LabelwiseLoss):
    """One-vs-rest hinge ``max(0, 1 - t s)``, t = +-1, see
    :func:`negev.nn.functional.mantra_multilabel_hinge_loss`."""

    def element_losses(self, scores: Tensor, targets: Tensor) -> Tensor:
        return mantra_multilabel_hinge_loss(scores, targets, reduction="none", validate_args=False)


class CrossEntropyLoss(_SingleLabelLoss):
    """Softmax cross-entropy ``-log softmax(s)_y``."""

    def sample_losses(self, scores: Tensor, indices: Tensor) -> Tensor:
        return F.cross_entropy(scores, indices, reduction="none")


class MantraHingeLoss(_SingleLabelLoss):
    """Multi-class structural hinge ``max(0, max_{y != y*} (1 + s_y) - s_{y*})``, see
    :func:`negev.nn.functional.mantra_hinge_loss`."""

    def sample_losses(self, scores: Tensor, indices: Tensor) -> Tensor:
        return mantra_hinge_loss(scores, indices, reduction="none", validate_args=False)


class APSVMLoss(_Loss):
    """Structured AP ranking loss (an upper bound of 1 - AP per class), see
    :func:`negev.nn.functional.ap_svm_loss`. Also takes (N,) scores and targets (one ranking).

    ``"mean"`` / ``"sum"`` run over the classes with both a positive and a negative; ``"none"``
    gives (C,) with NaN for the others.

    ``validate_args=False`` skips the checks of the values (targets 0 or 1, finite scores). Then
    the fused GPU inference (CUDA with Triton, float32 / 16-bit scores) reads nothing on the host;
    elsewhere the exact search is sized by the number of positives of each class, read on the
    host (one copy per call), whatever ``validate_args``.
    """

    couples_samples = True

    def forward(self, scores: Tensor, targets: Tensor, known: Tensor | None = None) -> Tensor:
        self._no_known(known)
        return ap_svm_loss(scores, targets, self.reduction, validate_args=self.validate_args)
