"""Module forms of the negev layers."""

from negev.nn.modules.head import EvidenceHead, EvidenceOutput
from negev.nn.modules.losses import APSVMLoss, MantraHingeLoss, MantraMultiLabelHingeLoss
from negev.nn.modules.pooling import ClassWisePool, LSEPool, WildcatPool
from negev.nn.modules.presets import POOLINGS, create_pool

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
]
