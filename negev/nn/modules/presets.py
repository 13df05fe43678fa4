"""The named poolings of the negative-evidence family, built by name.

======== ============================== =====================================
name     pooling                        parameters used
======== ============================== =====================================
max      top-1                          (none)
gap      global average                 (none)
maxmin   max + min                      alpha
weldon   mean top-k + mean bottom-k     kmax (= kmin), alpha
wildcat  mean top-k+ + alpha bottom-k-  kmax, kmin, alpha (M maps: EvidenceHead)
lse      unified log-sum-exp            beta_pos, beta_neg, alpha
linsoft  linear softmax (audio tagging) (none)
attention attention (audio tagging)     (none; the head adds the attention map)
mimean   instance classifier + mean     (none; mean of instance probabilities)
abmil    attention MIL (Ilse et al.)    (none; the head adds the attention map)
dsmil    DSMIL-style dual stream        (none; the head adds the queries)
======== ============================== =====================================
"""

from __future__ import annotations

from torch import nn

from negev.nn.modules.mil import AttentionMILPool, DSMILPool, InstanceMeanPool
from negev.nn.modules.pooling import AttentionPool, LinearSoftmaxPool, LSEPool, WildcatPool

__all__ = ["POOLINGS", "create_pool"]

POOLINGS: tuple[str, ...] = (
    "max",
    "gap",
    "maxmin",
    "weldon",
    "wildcat",
    "lse",
    "linsoft",
    "attention",
    "mimean",
    "abmil",
    "dsmil",
)


def create_pool(
    name: str,
    *,
    kmax: float | int = 1,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    beta_pos: float = 1.0,
    beta_neg: float = -1.0,
) -> nn.Module:
    """Build a pooling module by name (see the table above).

    ``max`` and ``gap`` ignore every parameter; ``maxmin`` uses only ``alpha``; ``weldon`` uses
    ``kmax`` for both ends; ``wildcat`` uses ``kmax``, ``kmin``, ``alpha``; ``lse`` uses the betas
    and ``alpha``.
    """
    if name == "max":
        return WildcatPool(kmax=1, kmin=0, alpha=0.0)
    if name == "gap":
        # A fraction cannot express "all regions" (it must be < 1): a count larger than any input
        # keeps every valid region, whatever the sample's size.
        return WildcatPool(kmax=2**62, kmin=0, alpha=0.0)
    if name == "maxmin":
        return WildcatPool(kmax=1, kmin=1, alpha=alpha)
    if name == "weldon":
        return WildcatPool(kmax=kmax, kmin=kmax, alpha=alpha)
    if name == "wildcat":
        return WildcatPool(kmax=kmax, kmin=kmin, alpha=alpha)
    if name == "lse":
        return LSEPool(beta_pos=beta_pos, beta_neg=beta_neg, alpha=alpha)
    if name == "linsoft":
        return LinearSoftmaxPool()
    if name == "attention":
        return AttentionPool()
    if name == "mimean":
        return InstanceMeanPool()
    if name == "abmil":
        return AttentionMILPool()
    if name == "dsmil":
        return DSMILPool()
    raise ValueError(f"unknown pooling {name!r}; choose one of {', '.join(POOLINGS)}")
