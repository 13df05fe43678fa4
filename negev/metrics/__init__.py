"""Evaluation metrics: functional forms and a stateful, distributed-safe class.

Average precision (:mod:`negev.metrics.average_precision`): per class, mean, VOC07 11-point.
:class:`MeanAveragePrecision` (:mod:`negev.metrics.stateful`) is a :class:`torchmetrics.Metric`;
it is imported on first use, so the functions need torch only.
"""

from __future__ import annotations

from typing import Any

from negev.metrics.average_precision import average_precision, mean_average_precision

__all__ = ["MeanAveragePrecision", "average_precision", "mean_average_precision"]


def __getattr__(name: str) -> Any:
    if name == "MeanAveragePrecision":
        from negev.metrics.stateful import MeanAveragePrecision

        return MeanAveragePrecision
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
