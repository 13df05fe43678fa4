"""``validate_args=False``: the poolings, the head and the losses never wait for the device.

A host synchronisation is a tensor value read by Python: ``.item()``, ``bool()`` / ``int()`` /
``float()`` of a tensor (every data-dependent ``if``), ``.tolist()``, ``.cpu()`` / ``.numpy()``,
or an op whose output shape depends on the data (``nonzero``). ``torch.cuda.set_sync_debug_mode``
sees them on CUDA only; here every such entry point is counted through a patch, on any device, and
``validate_args=True`` (the default) must hit the counter, which proves that it counts.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from negev.nn import (
    AttentionMILPool,
    AttentionPool,
    DSMILPool,
    EvidenceHead,
    InstanceMeanPool,
    LinearSoftmaxPool,
    LSEPool,
    WildcatPool,
)
from negev.nn.functional import mantra_hinge_loss, mantra_multilabel_hinge_loss

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


def _head_pass(pool, device, masked: bool) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    head = EvidenceHead(6, 3, num_maps=2, pool=pool).to(device)
    features = torch.randn(4, 6, 5, 6, device=device, requires_grad=True)
    mask = (torch.rand(4, 5, 6, device=device) > 0.4) if masked else None
    if mask is not None:
        mask[:, 0, 0] = True
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda sync debug mode")
@pytest.mark.parametrize("name", ["maxmin", "weldon", "wildcat_fraction", "lse"])
def test_cuda_sync_debug_mode_sees_no_sync(name):
    pool = POOLS[name](False)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _head_pass(pool, torch.device("cuda"), masked=True)
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
