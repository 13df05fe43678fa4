"""The Triton paths of ap_svm_loss (the GPU paths) against the torch search and the references:
float64 scores take the torch inference with the Triton search, float32 / bfloat16 scores the fused
inference (keys, one sort, the search, the finishing kernel).

Triton's interpreter must be chosen before Triton is imported, so the kernel tests run in a
child process with TRITON_INTERPRET=1, where ap_svm_loss takes the kernels on CPU tensors (a few
seconds); on a GPU test_ap_svm_loss.py runs them on the device. Skipped without Triton.
"""

from __future__ import annotations

import contextlib
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from negev.nn.functional import _ap_search, _ap_triton, ap_svm_inference, ap_svm_loss
from negev.testing import brute_force_ap_svm_loss, loop_ap_svm
from tests.interpreter import in_interpreter, run_in_interpreter
from tests.test_ap_svm_loss import small_ranking

pytest.importorskip("triton")


def test_interpreted_kernels():
    """Run this file's kernel tests in a child process under Triton's interpreter."""
    run_in_interpreter(__file__)


def search_inputs(n: int, counts: list[int], seed: int):
    """The search's inputs for random columns with the given numbers of positives."""
    rng = np.random.default_rng(seed)
    c = len(counts)
    ordered = torch.tensor(rng.integers(-4, 5, size=(c, n)) / 2.0 + rng.normal(size=(c, n)) * 0.1)
    for row, p in enumerate(counts):  # positives by decreasing score, then negatives
        ordered[row, :p] = ordered[row, :p].sort(descending=True).values
        ordered[row, p:] = ordered[row, p:].sort(descending=True).values
    usable = [0 < p < n for p in counts]
    p_max = max(p for p, u in zip(counts, usable, strict=True) if u)
    q_max = n - min(p for p, u in zip(counts, usable, strict=True) if u)
    pos = torch.tensor([[min(p, p_max)] for p in counts])
    negatives = torch.tensor([[n - p] for p in counts])
    two_over_q = 2.0 / negatives.clamp(min=1).double()
    return ordered, two_over_q, pos, negatives, p_max, q_max


@in_interpreter
@pytest.mark.parametrize(
    ("n", "counts", "strides"),
    [
        (12, [3, 9, 1], None),  # fewer negatives than one stride: one block kernel
        (300, [75, 10, 290, 150], None),  # two levels, uneven columns
        (700, [1, 699, 350], None),  # one positive, one negative
        (200, [0, 60, 200], None),  # columns without positive / without negative
        (300, [75, 10, 290, 150], [64, 16, 1]),  # three levels
        (200, [0, 60, 200, 100], [32, 2, 1]),  # three levels, ratios 16 and 2
        (4400, [1100, 4300], None),  # three levels by size
    ],
)
def test_insertions_equal_the_torch_search(n, counts, strides):
    ordered, two_over_q, pos, negatives, p_max, q_max = search_inputs(n, counts, seed=n)
    dense = _ap_search.best_insertions(ordered, two_over_q, pos, negatives, p_max, q_max, [1])
    chosen = mock.patch.object(_ap_triton, "strides_for", return_value=strides)
    with chosen if strides else contextlib.nullcontext():
        fused = _ap_search.best_insertions(ordered, two_over_q, pos, negatives, p_max, q_max, None)
    assert _ap_triton.disabled is None
    for row, p in enumerate(counts):
        if 0 < p < n:  # the others may hold any insertion in [0, P]
            q = n - p
            assert torch.equal(fused[row, : q + 1], dense[row, : q + 1]), row
            assert torch.all(fused[row, q + 1 :] == p)


@in_interpreter
@pytest.mark.parametrize("seed", range(4))
def test_node_chunks_equal_the_dense_search(seed, monkeypatch):
    """The node kernel's candidates in chunks of 8 (about 12 per column), combined, give the
    insertions of the dense torch search, on integer scores (many equal scores)."""
    monkeypatch.setattr(_ap_triton, "_NODE_CHUNK", 8)
    n, counts = 120, [30, 60, 90, 100]
    rng = np.random.default_rng(seed)
    ordered = torch.tensor(rng.integers(-2, 3, size=(len(counts), n)), dtype=torch.float64)
    for row, p in enumerate(counts):  # positives by decreasing score, then negatives
        ordered[row, :p] = ordered[row, :p].sort(descending=True).values
        ordered[row, p:] = ordered[row, p:].sort(descending=True).values
    pos = torch.tensor([[p] for p in counts])
    negatives = torch.tensor([[n - p] for p in counts])
    two_over_q = 2.0 / negatives.double()
    p_max, q_max = max(counts), n - min(counts)
    dense = _ap_search.best_insertions(ordered, two_over_q, pos, negatives, p_max, q_max, [1])
    fused = _ap_search.best_insertions(ordered, two_over_q, pos, negatives, p_max, q_max, None)
    assert _ap_triton.disabled is None
    for row, p in enumerate(counts):
        assert torch.equal(fused[row, : n - p + 1], dense[row, : n - p + 1]), row


# (dtype, loss tolerance, gradient tolerance): the search alone, and the fused inference
DTYPES = [(torch.float64, 1e-10, 1e-12), (torch.float32, 1e-6, 1e-7)]


@contextlib.contextmanager
def fused_calls():
    """Count the calls of the fused inference (float32 must take it, float64 must not)."""
    with mock.patch.object(_ap_triton, "inference_parts", wraps=_ap_triton.inference_parts) as spy:
        yield spy


@in_interpreter
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@settings(max_examples=40, deadline=None)
@given(data=small_ranking())
def test_equals_brute_force_over_all_rankings(dtype, data):
    scores, targets = data  # small integers or floats: the float32 rounding is checked below
    scores = torch.tensor(scores, dtype=dtype)
    loss = ap_svm_loss(scores, torch.tensor(targets))
    assert _ap_triton.disabled is None
    expected = brute_force_ap_svm_loss(scores.double().numpy(), targets)
    assert loss.item() == pytest.approx(expected, abs=1e-9 if dtype == torch.float64 else 1e-6)


@in_interpreter
@pytest.mark.parametrize(("dtype", "loss_tol", "grad_tol"), DTYPES)
@pytest.mark.parametrize(("n", "c", "rate"), [(50, 3, 0.5), (300, 4, 0.1), (257, 2, 0.9)])
def test_matches_loop_reference_loss_and_gradient(n, c, rate, dtype, loss_tol, grad_tol):
    rng = np.random.default_rng(n)
    scores_t = torch.tensor(rng.normal(size=(n, c)), dtype=dtype, requires_grad=True)
    targets = rng.random((n, c)) < rate
    # the reference sees the scores the loss sees
    expected_loss, expected_grad = loop_ap_svm(scores_t.detach().double().numpy(), targets)
    with fused_calls() as spy:
        loss = ap_svm_loss(scores_t, torch.tensor(targets), reduction="none")
    assert spy.call_count == (dtype != torch.float64)
    loss.sum().backward()
    assert _ap_triton.disabled is None
    np.testing.assert_allclose(loss.detach().double().numpy(), expected_loss, atol=loss_tol)
    np.testing.assert_allclose(scores_t.grad.double().numpy(), expected_grad, atol=grad_tol)


@in_interpreter
@pytest.mark.parametrize("chunk", [256, 8], ids=["one_chunk", "chunks_of_8"])
@pytest.mark.parametrize(("dtype", "loss_tol", "grad_tol"), DTYPES)
def test_ties_and_uneven_columns_match_the_loop(dtype, loss_tol, grad_tol, chunk, monkeypatch):
    # integer scores (exact in float32) with many ties and a -0.0 among zeros, columns with few
    # and many positives, one without negative, one without positive; the node kernel's
    # candidates in one chunk, or in many (ties across chunks: the largest argmax must win)
    monkeypatch.setattr(_ap_triton, "_NODE_CHUNK", chunk)
    rng = np.random.default_rng(7)
    scores = rng.integers(-3, 4, size=(90, 6)).astype(np.float64)
    scores[scores == 0] = -0.0
    scores[::7] = 0.0
    targets = rng.random((90, 6)) < np.array([0.02, 0.3, 0.6, 0.97, 1.0, 0.0])
    targets[0, :4], targets[1, :4] = True, False
    expected_loss, expected_grad = loop_ap_svm(scores, targets)
    scores_t = torch.tensor(scores, dtype=dtype, requires_grad=True)
    loss = ap_svm_loss(scores_t, torch.tensor(targets), reduction="none")
    loss.nansum().backward()
    np.testing.assert_allclose(loss.detach().double().numpy(), expected_loss, atol=loss_tol)
    np.testing.assert_allclose(scores_t.grad.double().numpy(), expected_grad, atol=grad_tol)


@in_interpreter
def test_fused_bfloat16_equals_the_torch_path_on_the_same_values():
    torch.manual_seed(3)
    scores = torch.randn(200, 4).bfloat16()
    targets = torch.rand(200, 4) < 0.3
    counts = targets.sum(0).tolist()
    loss, grad = _ap_triton.inference(scores, targets, counts, max(counts), 200 - min(counts))
    with mock.patch.object(_ap_triton, "supports", return_value=False):
        expected_loss, expected_grad = ap_svm_inference(scores.double(), targets)
    torch.testing.assert_close(loss, expected_loss, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad, expected_grad, atol=1e-15, rtol=0)


@in_interpreter
def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    scores = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.rand(40, 3) < 0.4
    assert torch.autograd.gradcheck(lambda s: ap_svm_loss(s, targets, "sum"), (scores,))


def test_a_failing_kernel_falls_back_to_the_torch_search_with_a_warning():
    rng = np.random.default_rng(3)
    scores = torch.tensor(rng.normal(size=(60, 2)))
    targets = torch.tensor(rng.random((60, 2)) < 0.3)
    expected = ap_svm_loss(scores, targets, reduction="none")
    broken = mock.patch.object(
        _ap_triton, "best_insertions", side_effect=RuntimeError("no compiler")
    )
    with (
        broken,
        mock.patch.object(_ap_triton, "supports", return_value=True),
        mock.patch.object(_ap_triton, "supports_fused", return_value=False),
        mock.patch.object(_ap_triton, "disabled", None),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        loss = ap_svm_loss(scores, targets, reduction="none")
        assert "no compiler" in (_ap_triton.disabled or "")
    assert any("Triton search failed" in str(w.message) for w in caught)
    torch.testing.assert_close(loss, expected)


def test_strides_balance_the_kernels():
    assert _ap_triton.strides_for(1) == [16, 1]
    assert _ap_triton.strides_for(3_000) == [64, 1]
    assert _ap_triton.strides_for(50_000) == [32**2, 32, 1]
    for q in (5, 100, 4_096, 4_097, 10**6):
        strides = _ap_triton.strides_for(q)
        assert strides[-1] == 1 and len(strides) in (2, 3)
        for coarse, fine in zip(strides, strides[1:], strict=False):
            ratio = coarse // fine
            assert coarse == ratio * fine and ratio & (ratio - 1) == 0 and 16 <= ratio <= 128


def test_a_failing_fused_inference_falls_back_to_the_torch_path_with_a_warning():
    rng = np.random.default_rng(4)
    scores = torch.tensor(rng.normal(size=(60, 2)), dtype=torch.float32)
    targets = torch.tensor(rng.random((60, 2)) < 0.3)
    with mock.patch.object(_ap_triton, "supports", return_value=False):
        expected = ap_svm_loss(scores, targets, reduction="none")
    with (
        mock.patch.object(_ap_triton, "inference", side_effect=RuntimeError("no compiler")),
        mock.patch.object(_ap_triton, "supports_fused", return_value=True),
        mock.patch.object(_ap_triton, "supports", return_value=False),
        mock.patch.object(_ap_triton, "disabled", None),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        loss = ap_svm_loss(scores, targets, reduction="none")
    assert any("no compiler" in str(w.message) for w in caught)
    torch.testing.assert_close(loss, expected)


@in_interpreter
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    ("n", "rates"),
    [
        (90, [0.02, 0.3, 0.6, 0.97, 1.0, 0.0]),  # few and many positives, two unusable columns
        (300, [0.1, 0.5]),
        (2, [0.5, 0.5, 1.0]),  # one positive and one negative, or none
        (1, [1.0, 0.0]),  # no column can rank
    ],
)
def test_sync_free_path_equals_the_host_sized_one(n, rates, reduction):
    """validate_args=False on the fused path: counts and the mean's divisor stay on the device
    (no host read), the search is sized for any counts, and loss and gradient are those of the
    path sized by the counts read on the host (the reference checked against the loop above)."""
    from tests.test_no_sync import count_host_reads

    rng = np.random.default_rng(n)
    scores = torch.tensor(rng.normal(size=(n, len(rates))), dtype=torch.float32)
    targets = torch.tensor(rng.random((n, len(rates))) < np.array(rates))
    if n >= 2:
        targets[0, :2], targets[1, :2] = True, False
    expected = scores.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no usable column: the host path warns
        expected_loss = ap_svm_loss(expected, targets, reduction)
    expected_loss.nansum().backward()
    got = scores.clone().requires_grad_(True)
    with count_host_reads() as reads, fused_calls() as spy, warnings.catch_warnings():
        warnings.simplefilter("error")  # and this path does not
        loss = ap_svm_loss(got, targets, reduction, validate_args=False)
        loss.nansum().backward()
    assert reads == [] and spy.call_count == 1 and _ap_triton.disabled is None
    torch.testing.assert_close(loss, expected_loss.to(loss.dtype), equal_nan=True)
    torch.testing.assert_close(got.grad, expected.grad, atol=1e-7, rtol=0)


@in_interpreter
def test_loose_bounds_give_the_same_insertions():
    """The fused inference with P and Q bounded by N - 1 (the sync-free sizing) equals it with
    the exact largest P and Q, on uneven columns and three search levels."""
    rng = np.random.default_rng(11)
    scores = torch.tensor(rng.normal(size=(5000, 3)), dtype=torch.float32)
    targets = torch.tensor(rng.random((5000, 3)) < np.array([0.01, 0.5, 0.9]))
    counts = targets.sum(0).tolist()
    tight = _ap_triton.inference(scores, targets, counts, max(counts), 5000 - min(counts))
    loose = _ap_triton.inference(scores, targets, targets.sum(0), 4999, 4999)
    torch.testing.assert_close(loose[0], tight[0], atol=0, rtol=0)
    torch.testing.assert_close(loose[1], tight[1], atol=0, rtol=0)


@pytest.mark.parametrize("shape", [(60, 2), (60,)], ids=["matrix", "vector"])
def test_a_failing_sync_free_path_falls_back_to_the_torch_path_with_a_warning(shape):
    rng = np.random.default_rng(5)
    scores = torch.tensor(rng.normal(size=shape), dtype=torch.float32, requires_grad=True)
    targets = torch.tensor(rng.random(shape) < 0.3)
    targets[0], targets[1] = True, False
    with mock.patch.object(_ap_triton, "supports", return_value=False):
        expected = ap_svm_loss(scores, targets, validate_args=False)
    with (
        mock.patch.object(_ap_triton, "inference_parts", side_effect=RuntimeError("no compiler")),
        mock.patch.object(
            _ap_triton, "supports_fused", side_effect=lambda s: _ap_triton.disabled is None
        ),
        mock.patch.object(_ap_triton, "supports", return_value=False),
        mock.patch.object(_ap_triton, "disabled", None),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        loss = ap_svm_loss(scores, targets, validate_args=False)
    assert any("no compiler" in str(w.message) for w in caught)
    torch.testing.assert_close(loss, expected)
