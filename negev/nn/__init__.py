"""Layers of negative-evidence models: pooling modules and the evidence head.

Plain functions live in :mod:`negev.nn.functional`.
"""

from negev.nn import functional
from negev.nn.modules import (
    POOLINGS,
    ClassWisePool,
    EvidenceHead,
    EvidenceOutput,
    LSEPool,
    WildcatPool,
    create_pool,
)

__all__ = [
    "POOLINGS",
    "ClassWisePool",
    "EvidenceHead",
    "EvidenceOutput",
    "LSEPool",
    "WildcatPool",
    "create_pool",
    "functional",
]
