"""Module forms of the negev layers."""

from negev.nn.modules.head import EvidenceHead, EvidenceOutput
from negev.nn.modules.losses import (
    APSVMLoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MantraHingeLoss,
    MantraMultiLabelHingeLoss,
)
from negev.nn.modules.mil import (
    AttentionMILPool,
    DSMILPool,
    GatedAttention,
    GatedAttentionMILPool,
    InstanceMeanPool,
)
from negev.nn.modules.pooling import (
    AttentionPool,
    ClassWisePool,
    LinearEvidencePool,
    LinearSoftmaxPool,
    LSEPool,
    WildcatPool,
)
from negev.nn.modules.presets import (
    LOSSES,
    POOLINGS,
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
    "LinearEvidencePool",
    "LinearSoftmaxPool",
    "LSEPool",
    "WildcatPool",
    "create_loss",
    "create_pool",
    "register_loss",
    "register_pool",
]
