"""Named poolings and losses: registries built by name with each name's own parameters.

======== ============================== ===========================================
pooling  meaning                        parameters (defaults)
======== ============================== ===========================================
max      top-1                          (none)
gap      global average                 (none)
maxmin   max + min                      alpha (1)
weldon   mean top-k + mean bottom-k     kmax = k (0.2), alpha (1)
wildcat  mean top-k+ + alpha bottom-k-  kmax (0.2), kmin (None: = kmax), alpha (0.7);
                                        M maps per class: ``EvidenceHead(num_maps=M)``
                                        (``pool_each_map=True``: each map pooled alone)
lse      unified log-sum-exp            beta_pos (5), beta_neg (-5), alpha (0.7)
sumwildcat bias + sum of regions +      kmax (0.25), kmin (None: = kmax), alpha (1);
         gate * WILDCAT                 bias and gate learned per class, zero at first
gapwildcat bias + mean of regions +     as sumwildcat
         gate * WILDCAT
linsoft  linear softmax (audio tagging) (none)
attention attention (audio tagging)     (none; the head adds the attention map)
mimean   instance classifier + mean     (none; mean of instance probabilities)
abmil    attention MIL (Ilse et al.)    (none; the head adds linear attention logits)
gabmil   gated attention MIL (eq. 9)    attention_dim (128): the gated attention's L
dsmil    DSMIL dual stream              query_dim (128): the head adds queries and
                                        the bag stream's classifier
======== ============================== ===========================================

Losses (see :mod:`negev.nn.modules.losses` for the shared signature): ``bce``, ``ce``
(single-label), ``ap`` (AP ranking over the batch), ``mantra`` (multi-class hinge, one-vs-rest for
multi-label data). A loss factory receives ``multilabel`` and ``reduction`` when it declares them.

Every pooling and loss built by name takes ``validate_args`` (default True; False: a forward pass
without host synchronisation, see :mod:`negev.nn.modules.pooling` and
:mod:`negev.nn.modules.losses`). Like ``multilabel``, it is context, not a hyper-parameter: it is
passed to the factories that declare it, and is not one of a name's parameters (no CLI option, no
entry in the run's config). So is ``num_classes`` (C), passed by the engine to the poolings
that declare it (``sumwildcat``, ``gapwildcat``: one bias and gate per class); with
``pool_each_map`` the pool scores each map as a row of its own and gets C*M.

Third-party components register a class or a callable: ``register_pool("mine", MyPool)`` or
``@register_loss("mine")`` on a factory; the keyword parameters of its signature are the
parameters its name accepts. A name registered twice is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from negev.errors import ConfigError
from negev.nn._api import Registry
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
    GatedAttentionMILPool,
    InstanceMeanPool,
)
from negev.nn.modules.pooling import (
    AttentionPool,
    LinearEvidencePool,
    LinearSoftmaxPool,
    LSEPool,
    WildcatPool,
)

__all__ = [
    "LOSSES",
    "POOLINGS",
    "create_loss",
    "create_pool",
    "register_loss",
    "register_pool",
]

POOLINGS = Registry("pooling", context=("validate_args", "num_classes"))
LOSSES = Registry("loss", context=("multilabel", "reduction", "validate_args"))


def create_pool(name: str | Callable[..., nn.Module], /, **params: Any) -> nn.Module:
    """Build a pooling module: a registered name (table above) with the parameters that name
    takes, or a class / callable called with ``params``. ``validate_args`` goes to the factories
    that declare it (every registered pooling).

    Raises:
        ConfigError: unknown name, or a parameter the pooling does not take (``maxmin`` has no k).
    """
    return POOLINGS.create(name, **params)


def register_pool(name: str, factory: Callable[..., nn.Module] | None = None, *, summary: str = ""):
    """Register a pooling class or factory as ``name`` (a decorator without ``factory``)."""
    return POOLINGS.register(name, factory, summary=summary)


def create_loss(name: str | Callable[..., nn.Module], /, **params: Any) -> nn.Module:
    """Build a loss module by registered name (or from a class / callable). ``multilabel``,
    ``reduction`` and ``validate_args`` go to the factories that declare them."""
    return LOSSES.create(name, **params)


def register_loss(name: str, factory: Callable[..., nn.Module] | None = None, *, summary: str = ""):
    """Register a loss class or factory as ``name`` (a decorator without ``factory``)."""
    return LOSSES.register(name, factory, summary=summary)


# -- poolings ---------------------------------------------------------------------------------


@register_pool("max", summary="max: top-1")
def _max(validate_args: bool = True) -> WildcatPool:
    return WildcatPool(kmax=1, kmin=0, alpha=0.0, validate_args=validate_args)


@register_pool("gap", summary="GAP: global average")
def _gap(validate_args: bool = True) -> WildcatPool:
    # A fraction cannot express "all regions" (it must be < 1): a count larger than any input
    # keeps every valid region, whatever the sample's size.
    return WildcatPool(kmax=2**62, kmin=0, alpha=0.0, validate_args=validate_args)


@register_pool("maxmin", summary="max+min: top-1 + alpha bottom-1")
def _maxmin(alpha: float = 1.0, validate_args: bool = True) -> WildcatPool:
    return WildcatPool(kmax=1, kmin=1, alpha=alpha, validate_args=validate_args)


@register_pool("weldon", summary="WELDON: mean top-k + alpha mean bottom-k")
def _weldon(kmax: float | int = 0.2, alpha: float = 1.0, validate_args: bool = True) -> WildcatPool:
    return WildcatPool(kmax=kmax, kmin=kmax, alpha=alpha, validate_args=validate_args)


@register_pool("wildcat", summary="WILDCAT: mean top-k+ + alpha mean bottom-k-")
def _wildcat(
    kmax: float | int = 0.2,
    kmin: float | int | None = None,
    alpha: float = 0.7,
    validate_args: bool = True,
) -> WildcatPool:
    return WildcatPool(kmax=kmax, kmin=kmin, alpha=alpha, validate_args=validate_args)


@register_pool("lse", summary="LSE: soft max + alpha soft min")
def _lse(
    beta_pos: float = 5.0, beta_neg: float = -5.0, alpha: float = 0.7, validate_args: bool = True
) -> LSEPool:
    return LSEPool(beta_pos=beta_pos, beta_neg=beta_neg, alpha=alpha, validate_args=validate_args)


@register_pool("sumwildcat", summary="bias + sum of regions + gate * WILDCAT")
def _sumwildcat(
    kmax: float | int = 0.25,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    num_classes: int = 1,
    validate_args: bool = True,
) -> LinearEvidencePool:
    return LinearEvidencePool(kmax, kmin, alpha, "sum", num_classes, validate_args=validate_args)


@register_pool("gapwildcat", summary="bias + mean of regions + gate * WILDCAT")
def _gapwildcat(
    kmax: float | int = 0.25,
    kmin: float | int | None = None,
    alpha: float = 1.0,
    num_classes: int = 1,
    validate_args: bool = True,
) -> LinearEvidencePool:
    return LinearEvidencePool(kmax, kmin, alpha, "mean", num_classes, validate_args=validate_args)


register_pool("linsoft", LinearSoftmaxPool, summary="linear softmax (audio tagging)")
register_pool("attention", AttentionPool, summary="attention (audio tagging)")
register_pool("mimean", InstanceMeanPool, summary="mean of instance probabilities (MIL)")
register_pool("abmil", AttentionMILPool, summary="attention MIL (Ilse et al.)")
register_pool("gabmil", GatedAttentionMILPool, summary="gated attention MIL (Ilse et al.)")
register_pool("dsmil", DSMILPool, summary="DSMIL dual stream (Li et al.)")


# -- losses -----------------------------------------------------------------------------------

register_loss("bce", BCEWithLogitsLoss, summary="binary cross-entropy per label")
register_loss("ap", APSVMLoss, summary="structured AP ranking loss over the batch")


@register_loss("ce", summary="softmax cross-entropy (single-label data)")
def _ce(
    multilabel: bool = False, reduction: str = "mean", validate_args: bool = True
) -> CrossEntropyLoss:
    if multilabel:
        raise ConfigError("loss 'ce' needs single-label data; use 'bce' for multi-label data")
    return CrossEntropyLoss(reduction, validate_args=validate_args)


@register_loss("mantra", summary="MANTRA hinge (one-vs-rest on multi-label data)")
def _mantra(
    multilabel: bool = False, reduction: str = "mean", validate_args: bool = True
) -> nn.Module:
    loss = MantraMultiLabelHingeLoss if multilabel else MantraHingeLoss
    return loss(reduction, validate_args=validate_args)
