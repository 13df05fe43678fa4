"""Layers of negative-evidence models: pooling modules, the evidence head and the losses.

Plain functions live in :mod:`negev.nn.functional`.
"""

from negev.nn import functional
from negev.nn.modules import (
    POOLINGS,
    APSVMLoss,
    AttentionMILPool,
    AttentionPool,
    ClassWisePool,
    DSMILPool,
    EvidenceHead,
    EvidenceOutput,
    InstanceMeanPool,
    LinearSoftmaxPool,
    LSEPool,
    MantraHingeLoss,
    MantraMultiLabelHingeLoss,
    WildcatPool,
    create_pool,
)

__all__ = [
    "POOLINGS",
    "APSVMLoss",
    "MantraHingeLoss",
    "MantraMultiLabelHingeLoss",
    "AttentionMILPool",
    "AttentionPool",
    "DSMILPool",
    "InstanceMeanPool",
    "ClassWisePool",
    "EvidenceHead",
    "EvidenceOutput",
    "LinearSoftmaxPool",
    "LSEPool",
    "WildcatPool",
    "create_pool",
    "functional",
]
