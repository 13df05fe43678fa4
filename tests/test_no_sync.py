"""``validate_args=False``: the poolings, the head and the losses never wait for the device,
whether built as classes or by name through the registries.

A host synchronisation is a tensor value read by Python: ``.item()``, ``bool()`` / ``int()`` /
``float()`` of a tensor (every data-dependent ``if``), ``.tolist()``, ``.cpu()`` / ``.numpy()``,
or an op whose output shape depends on the data (``nonzero``). ``torch.cuda.set_sync_debug_mode``
sees them on CUDA only; here every such entry point is counted through a patch, on any device, and
``validate_args=True`` (the default) must hit the counter, which proves that it counts.

The one explicit exception is the AP loss (``APSVMLoss``, ``"ap"``) off its fused GPU path: its
exact search is then sized by the number of positives of each class, read on the host by design;
without validation that read is all that is left. On the fused path (CUDA with Triton, float32)
nothing is read.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from negev.nn import (
    LOSSES,
    POOLINGS,
    APSVMLoss,
    AttentionMILPool,
    AttentionPool,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    DSMILPool,
    EvidenceHead,
    InstanceMeanPool,
    LinearSoftmaxPool,
    LSEPool,
    MantraHingeLoss,
    MantraMultiLabelHingeLoss,
    WildcatPool,
    create_loss,
    create_pool,
)
from negev.nn.functional import _ap_triton, mantra_hinge_loss, mantra_multilabel_hinge_loss

_READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy")
_DATA_SHAPED = ("nonzero", "masked_select", "unique")


@contextlib.contextmanager
def count_host_reads():
    """Count the calls that copy tensor values to the host (see the module docstring)."""
    calls: list[str] = []
    saved = {}

    def counting(owner, name):
        original = getattr(owner, name)
        saved[(owner, name)] = original

        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)

    for name in _READS + _DATA_SHAPED:
        counting(torch.Tensor, name)
    for name in _DATA_SHAPED:
        counting(torch, name)
    try:
        yield calls
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)


POOLS = {
    "max": lambda v: WildcatPool(1, 0, 0.0, validate_args=v),
    "maxmin": lambda v: WildcatPool(1, 1, 1.0, validate_args=v),
    "weldon": lambda v: WildcatPool(3, 3, 1.0, validate_args=v),
    "wildcat_fraction": lambda v: WildcatPool(0.2, 0.3, 0.7, validate_args=v),
    "wildcat_sort": lambda v: WildcatPool(12, 12, 0.7, validate_args=v),
    "lse": lambda v: LSEPool(2.0, -1.0, 0.5, validate_args=v),
    "lse_mean": lambda v: LSEPool(0.0, 0.0, 1.0, validate_args=v),
    "linear_softmax": lambda v: LinearSoftmaxPool(validate_args=v),
    "attention": lambda v: AttentionPool(validate_args=v),
    "instance_mean": lambda v: InstanceMeanPool(validate_args=v),
    "attention_mil": lambda v: AttentionMILPool(validate_args=v),
    "dsmil": lambda v: DSMILPool(validate_args=v),
}


def _head_inputs(pool, device, masked: bool):
    """An EvidenceHead over ``pool`` and its (features, mask), on ``device``."""
    torch.manual_seed(0)
    head = EvidenceHead(6, 3, num_maps=2, pool=pool).to(device)
    features = torch.randn(4, 6, 5, 6, device=device, requires_grad=True)
    mask = (torch.rand(4, 5, 6, device=device) > 0.4) if masked else None
    if mask is not None:
        mask[:, 0, 0] = True
    return head, features, mask


def _head_pass(pool, device, masked: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return _run_head(*_head_inputs(pool, device, masked))


def _run_head(head, features, mask) -> tuple[torch.Tensor, torch.Tensor]:
    scores, maps = head(features, mask)
    (scores.sum() + maps.sum()).backward()
    return scores.detach(), features.grad


@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
@pytest.mark.parametrize("name", list(POOLS))
def test_head_forward_and_backward_do_not_sync(name, masked, device):
    with count_host_reads() as checked:
        expected = _head_pass(POOLS[name](True), device, masked)
    with count_host_reads() as calls:
        got = _head_pass(POOLS[name](False), device, masked)
    assert calls == [], f"{name}: host reads {calls}"
    if name not in ("instance_mean", "attention_mil", "dsmil") or masked:
        assert checked, f"{name}: validate_args=True should read values (the counter's proof)"
    # the same numbers, checks or not
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1])


def test_losses_do_not_sync(device):
    scores = torch.randn(5, 3, device=device, requires_grad=True)
    indices = torch.tensor([0, 2, 1, 1, 0], device=device)
    multi_hot = (torch.rand(5, 3, device=device) > 0.5).float()
    with count_host_reads() as checked:
        mantra_hinge_loss(scores, indices)
        mantra_multilabel_hinge_loss(scores, multi_hot)
    assert checked
    with count_host_reads() as calls:
        loss = mantra_hinge_loss(scores, indices, validate_args=False)
        loss = loss + mantra_multilabel_hinge_loss(scores, multi_hot, validate_args=False)
        loss.backward()
    assert calls == []


def _loss_data(device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    indices = torch.tensor([0, 3, 1, 2, 2, 0])
    multi_hot = (torch.rand(6, 4, generator=g) > 0.5).float()
    multi_hot[0], multi_hot[1] = 1.0, 0.0  # every class has a positive and a negative (AP)
    data = {
        "scores": torch.randn(6, 4, generator=g),
        "indices": indices,
        "one_hot": F.one_hot(indices, 4).float(),
        "multi_hot": multi_hot,
        "known": torch.rand(6, 4, generator=g) > 0.3,
    }
    return {k: v.to(device) for k, v in data.items()}


def _loss_pass(loss, data, targets: str, known: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and its gradient w.r.t. the scores."""
    scores = data["scores"].clone().requires_grad_()
    value = loss(scores, data[targets], data["known"] if known else None)
    value.sum().backward()
    return value.detach(), scores.grad


# loss module class, targets, with known
LOSS_MODULES = {
    "bce": (BCEWithLogitsLoss, "multi_hot", True),
    "mantra_multilabel": (MantraMultiLabelHingeLoss, "multi_hot", True),
    "ce_indices": (CrossEntropyLoss, "indices", False),
    "ce_one_hot": (CrossEntropyLoss, "one_hot", False),
    "mantra_indices": (MantraHingeLoss, "indices", False),
    "mantra_one_hot": (MantraHingeLoss, "one_hot", False),
}


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", list(LOSS_MODULES))
def test_loss_modules_do_not_sync(name, reduction, device):
    loss, targets, known = LOSS_MODULES[name]
    data = _loss_data(device)
    with count_host_reads() as checked:
        expected = _loss_pass(loss(reduction), data, targets, known)
    with count_host_reads() as calls:
        got = _loss_pass(loss(reduction, validate_args=False), data, targets, known)
    assert calls == [], f"{name}: host reads {calls}"
    assert checked, f"{name}: validate_args=True should read the targets (the counter's proof)"
    torch.testing.assert_close(got, expected)


def _ap_reads(device) -> list[str]:
    """The host reads the AP loss keeps without validation: none on its fused path, else the
    number of positives per class that sizes the exact search (one ``tolist``)."""
    fused = _ap_triton.supports_fused(torch.zeros(1, 1, device=device))
    return [] if fused else ["tolist"]


def test_the_ap_loss_reads_its_positive_counts_by_design(device):
    """The explicit exception: without validation, only the read of the number of positives per
    class that sizes the exact search is left, and not even that on the fused GPU path."""
    data = _loss_data(device)
    with count_host_reads() as checked:
        expected = _loss_pass(APSVMLoss(), data, "multi_hot", False)
    with count_host_reads() as calls:
        got = _loss_pass(APSVMLoss(validate_args=False), data, "multi_hot", False)
    assert calls == _ap_reads(device)
    assert len(checked) > len(calls)  # the value checks are gone
    torch.testing.assert_close(got, expected)


# -- built by name: validate_args is context for every registered factory -------------------


@pytest.mark.parametrize("name", POOLINGS.names())
def test_every_registered_pooling_takes_validate_args(name, device):
    assert "validate_args" not in POOLINGS.get(name).defaults  # not a hyper-parameter
    assert create_pool(name).validate_args is True
    with count_host_reads() as calls:
        got = _head_pass(create_pool(name, validate_args=False), device, masked=True)
    assert calls == [], f"{name}: host reads {calls}"
    expected = _head_pass(create_pool(name), device, masked=True)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_takes_validate_args(name, device):
    assert "validate_args" not in LOSSES.get(name).defaults  # not a hyper-parameter
    data = _loss_data(device)
    for multilabel in (True, False) if name != "ce" else (False,):
        targets = "multi_hot" if multilabel else "one_hot"
        assert create_loss(name, multilabel=multilabel).validate_args is True
        loss = create_loss(name, multilabel=multilabel, validate_args=False)
        with count_host_reads() as calls:
            got = _loss_pass(loss, data, targets, known=False)
        assert calls == (_ap_reads(device) if name == "ap" else []), f"{name}: reads {calls}"
        expected = _loss_pass(create_loss(name, multilabel=multilabel), data, targets, False)
        torch.testing.assert_close(got, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda sync debug mode")
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "full"])
@pytest.mark.parametrize("name", ["maxmin", "weldon", "wildcat_fraction", "lse"])
def test_cuda_sync_debug_mode_sees_no_sync(name, masked):
    # the model and inputs are copied to the device before the mode is set, and a first call
    # builds the kernels and caches (the steady state of a training loop)
    _run_head(*_head_inputs(POOLS[name](False), torch.device("cuda"), masked))
    inputs = _head_inputs(POOLS[name](False), torch.device("cuda"), masked)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _run_head(*inputs)
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda sync debug mode")
@pytest.mark.parametrize("name", [*LOSS_MODULES, "ap"])
def test_cuda_sync_debug_mode_sees_no_sync_in_the_losses(name):
    loss, targets, known = LOSS_MODULES.get(name, (APSVMLoss, "multi_hot", False))
    if name == "ap" and _ap_reads(torch.device("cuda")):
        pytest.skip("the AP loss reads its counts off the fused path (no Triton)")
    data = _loss_data(torch.device("cuda"))  # copied to the device before the mode is set
    _loss_pass(loss(validate_args=False), data, targets, known)  # steady state: built, cached
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _loss_pass(loss(validate_args=False), data, targets, known)
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
@pytest.mark.parametrize(
    "pool", [WildcatPool(0.2, 0.2, 0.7), WildcatPool(3, 2, 1.0), LSEPool(2.0, -1.0, 0.5)]
)
def test_head_compiles_as_one_graph(pool):
    """``fullgraph=True`` refuses any graph break (a host read is one). The ``aot_eager``
    backend traces forward and backward through AOTAutograd; inductor's C++ build would take a
    minute of CI here and checks nothing more about graph breaks."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    head = EvidenceHead(8, 3, num_maps=2, pool=pool)
    features = torch.randn(4, 8, 5, 6)
    mask = torch.rand(4, 5, 6) > 0.3
    mask[:, 0, 0] = True
    with pytest.raises(Exception, match="nonzero|data-dependent|Data-dependent|item"):
        torch.compile(head, fullgraph=True, backend="eager")(features, mask)
    torch._dynamo.reset()
    pool.validate_args = False
    compiled = torch.compile(head, fullgraph=True, backend="aot_eager")
    for m in (mask, None):
        got, expected = compiled(features, m), head(features, m)
        torch.testing.assert_close(got.scores, expected.scores)
        torch.testing.assert_close(got.maps, expected.maps)
