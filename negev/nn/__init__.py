"""Layers of negative-evidence models: pooling modules, the evidence head and the losses.

Plain functions live in :mod:`negev.nn.functional`.
"""

from negev.nn import functional
from negev.nn.modules import (
    LOSSES,
    POOLINGS,
    APSVMLoss,
    AttentionMILPool,
    AttentionPool,
    BCEWithLogitsLoss,
    ClassWisePool,
    CrossEntropyLoss,
    DSMILPool,
    EvidenceHead,
    EvidenceOutput,
    GatedAttention,
    GatedAttentionMILPool,
    InstanceMeanPool,
    LinearSoftmaxPool,
    LSEPool,
    MantraHingeLoss,
    MantraMultiLabelHingeLoss,
    WildcatPool,
    create_loss,
    create_pool,
    register_loss,
    register_pool,
)

__all__ = [
    "LOSSES",
    "POOLINGS",
    "APSVMLoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "MantraHingeLoss",
    "MantraMultiLabelHingeLoss",
    "AttentionMILPool",
    "AttentionPool",
    "DSMILPool",
    "GatedAttention",
    "GatedAttentionMILPool",
    "InstanceMeanPool",
    "ClassWisePool",
    "EvidenceHead",
    "EvidenceOutput",
    "LinearSoftmaxPool",
    "LSEPool",
    "WildcatPool",
    "create_loss",
    "create_pool",
    "functional",
    "register_loss",
    "register_pool",
]
