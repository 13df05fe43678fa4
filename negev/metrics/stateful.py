"""Stateful mAP on :class:`torchmetrics.Metric` (needs ``torchmetrics``: ``negev[metrics]``).

torchmetrics keeps the batches as list states and gathers them from every rank (``dist_reduce_fx
= "cat"``, ranks may hold different numbers of rows) before ``compute()``; the AP itself is
:func:`negev.metrics.average_precision`.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    from torchmetrics import Metric
    from torchmetrics.utilities import dim_zero_cat
except ModuleNotFoundError as exc:  # pragma: no cover - torchmetrics is installed for the tests
    raise ModuleNotFoundError(
        "negev.metrics.MeanAveragePrecision needs torchmetrics: pip install 'negev[metrics]'",
        name=exc.name,
    ) from exc

from negev.metrics.average_precision import _INTERPOLATIONS, _as_columns, average_precision

__all__ = ["MeanAveragePrecision"]


class MeanAveragePrecision(Metric):
    """Mean average precision over batches: ``update(scores, targets)`` / ``compute()`` /
    ``reset()``, and the rest of the :class:`torchmetrics.Metric` API (``to(device)``, ``sync``,
    ``state_dict``).

    Under ``torch.distributed`` every rank's ``compute()`` returns the mAP of the whole dataset.
    The batches are kept (float64 scores, bool targets) on the metric's device until ``compute()``.

    Args:
        interpolation: ``"area"`` or ``"voc07"``, see :func:`average_precision`.
        kwargs: :class:`torchmetrics.Metric` options (``sync_on_compute``, ``process_group``...).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, interpolation: str = "area", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}"
            )
        self.interpolation = interpolation
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        """Add a batch: scores (B, C) float and targets (B, C) in {0, 1}."""
        values, labels = _as_columns(scores, targets)
        if self.scores and values.shape[1] != self.scores[0].shape[1]:
            raise ValueError(
                f"batch has {values.shape[1]} columns, earlier batches had "
                f"{self.scores[0].shape[1]}"
            )
        self.scores.append(values)
        self.targets.append(labels)

    def compute(self) -> Tensor:
        """mAP over the classes that have a positive (0-dim float64)."""
        return torch.nanmean(self._per_class())

    def compute_per_class(self) -> Tensor:
        """AP of each class over everything seen (all ranks), (C,) float64."""
        with self.sync_context():
            return self._per_class()

    def _per_class(self) -> Tensor:
        if isinstance(self.scores, list) and not self.scores:
            raise ValueError("MeanAveragePrecision.compute() called before any update()")
        scores, targets = dim_zero_cat(self.scores), dim_zero_cat(self.targets)
        return average_precision(scores, targets, self.interpolation)
