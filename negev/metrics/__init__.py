"""Evaluation metrics: functional forms and stateful, distributed-safe classes.

Average precision (:mod:`negev.metrics.average_precision`): per class, mean, VOC07 11-point.
"""

from negev.metrics.average_precision import (
    MeanAveragePrecision,
    average_precision,
    mean_average_precision,
)

__all__ = ["MeanAveragePrecision", "average_precision", "mean_average_precision"]
