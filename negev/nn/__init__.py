"""Layers of negative-evidence models: pooling modules, the evidence head and the losses.

Plain functions live in :mod:`negev.nn.functional`.
"""

from negev.nn import functional
from negev.nn.modules import (
    POOLINGS,
    APSVMLoss,
    ClassWisePool,
    EvidenceHead,
    EvidenceOutput,
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
    "ClassWisePool",
    "EvidenceHead",
    "EvidenceOutput",
    "LSEPool",
    "WildcatPool",
    "create_pool",
    "functional",
]
