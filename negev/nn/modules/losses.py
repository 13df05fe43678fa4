"""Loss modules: thin wrappers of :mod:`negev.nn.functional`."""

from __future__ import annotations

from torch import Tensor, nn

from negev.nn.functional import ap_svm_loss, mantra_hinge_loss, mantra_multilabel_hinge_loss

__all__ = ["APSVMLoss", "MantraHingeLoss", "MantraMultiLabelHingeLoss"]


class _Reduced(nn.Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class APSVMLoss(_Reduced):
    """Structured AP ranking loss, see :func:`negev.nn.functional.ap_svm_loss`.

    ``forward(scores (N,) or (N, C), targets same shape in {0, 1}) -> loss``.
    """

    def forward(self, scores: Tensor, targets: Tensor) -> Tensor:
        return ap_svm_loss(scores, targets, self.reduction)


class MantraHingeLoss(_Reduced):
    """Multi-class structural hinge, see :func:`negev.nn.functional.mantra_hinge_loss`.

    ``forward(scores (B, C), targets (B,) int64) -> loss``.
    """

    def forward(self, scores: Tensor, targets: Tensor) -> Tensor:
        return mantra_hinge_loss(scores, targets, self.reduction)


class MantraMultiLabelHingeLoss(_Reduced):
    """One-vs-rest hinge, see :func:`negev.nn.functional.mantra_multilabel_hinge_loss`.

    ``forward(scores (B, C), targets (B, C) in {0, 1}) -> loss``.
    """

    def forward(self, scores: Tensor, targets: Tensor) -> Tensor:
        return mantra_multilabel_hinge_loss(scores, targets, self.reduction)
