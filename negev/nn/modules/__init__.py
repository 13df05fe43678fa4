"""Module forms of the negev layers."""

from negev.nn.modules.head import EvidenceHead, EvidenceOutput
from negev.nn.modules.losses import APSVMLoss, MantraHingeLoss, MantraMultiLabelHingeLoss
from negev.nn.modules.mil import AttentionMILPool, DSMILPool, InstanceMeanPool
from negev.nn.modules.pooling import (
    AttentionPool,
    ClassWisePool,
    LinearSoftmaxPool,
    LSEPool,
    WildcatPool,
)
from negev.nn.modules.presets import POOLINGS, create_pool

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
]
