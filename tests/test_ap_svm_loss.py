"""ap_svm_loss against brute force over all rankings, the loop reference, finite differences."""

from __future__ import annotations

import contextlib
import math
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from negev.nn import APSVMLoss
from negev.nn.functional import _ap_search, ap_svm_loss
from negev.testing import brute_force_ap_svm_loss, loop_ap_svm

# The search paths: chosen by size and device, dense (one level), two and three levels, and one
# level per halving of Q (the most launches, the fewest candidates per level).
PATHS = ["auto", 1, 2, 3, "halving"]


@contextlib.contextmanager
def search_path(path):
    """Force the number of levels of the insertion search (``"auto"``: as chosen by size)."""
    if path == "auto":
        yield
        return

    def levels(p_max, q_max, columns, device):
        return max(1, math.ceil(math.log2(q_max + 1))) if path == "halving" else path

    with mock.patch.object(_ap_search, "choose_levels", levels):
        yield


@st.composite
def small_ranking(draw):
    n = draw(st.integers(2, 8))
    ties = draw(st.booleans())
    values = st.integers(-2, 2).map(float) if ties else st.floats(-3, 3, allow_nan=False)
    scores = draw(st.lists(values, min_size=n, max_size=n))
    targets = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    assume(any(targets) and not all(targets))
    return np.array(scores), np.array(targets)


@pytest.mark.parametrize("path", PATHS)
@given(data=small_ranking())
def test_equals_brute_force_over_all_rankings(path, data):
    scores, targets = data
    with search_path(path):
        loss = ap_svm_loss(torch.tensor(scores), torch.tensor(targets))
    assert loss.item() == pytest.approx(brute_force_ap_svm_loss(scores, targets), abs=1e-9)
    assert loss.item() >= -1e-12


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("n", "c", "rate"), [(50, 3, 0.5), (300, 4, 0.1), (257, 2, 0.9)])
def test_matches_loop_reference_loss_and_gradient(n, c, rate, dtype, path):
    rng = np.random.default_rng(n)
    scores = rng.normal(size=(n, c))
    targets = rng.random((n, c)) < rate
    if dtype == torch.float32:  # the reference sees the scores the loss sees
        scores = scores.astype(np.float32).astype(np.float64)
    expected_loss, expected_grad = loop_ap_svm(scores, targets)
    scores_t = torch.tensor(scores, dtype=dtype, requires_grad=True)
    with search_path(path):
        loss = ap_svm_loss(scores_t, torch.tensor(targets), reduction="none")
    if dtype == torch.float32:
        np.testing.assert_allclose(loss.detach().numpy(), expected_loss, atol=1e-6)
        loss.sum().backward()
        np.testing.assert_allclose(scores_t.grad.numpy(), expected_grad, atol=1e-7)
        return
    np.testing.assert_allclose(loss.detach().numpy(), expected_loss, atol=1e-10)
    loss.sum().backward()
    np.testing.assert_allclose(scores_t.grad.numpy(), expected_grad, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_gradient_matches_finite_differences(path):
    torch.manual_seed(0)
    scores = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.rand(40, 3) < 0.4
    with search_path(path):
        assert torch.autograd.gradcheck(lambda s: ap_svm_loss(s, targets, "sum"), (scores,))


@pytest.mark.parametrize("path", PATHS)
def test_ties_and_uneven_columns_match_the_loop(path, device):
    # integer scores (many ties, among positives, negatives and across), columns with few and
    # many positives, one without negative: the loss and the gradient of the loop reference
    rng = np.random.default_rng(7)
    scores = rng.integers(-3, 4, size=(90, 5)).astype(np.float64)
    targets = rng.random((90, 5)) < np.array([0.02, 0.3, 0.6, 0.97, 1.0])
    targets[0, :4], targets[1, :4] = True, False
    expected_loss, expected_grad = loop_ap_svm(scores, targets)
    scores_t = torch.tensor(scores, device=device, requires_grad=True)
    with search_path(path):
        loss = ap_svm_loss(scores_t, torch.tensor(targets, device=device), reduction="none")
    np.testing.assert_allclose(loss.detach().cpu().numpy(), expected_loss, atol=1e-10)
    loss.nansum().backward()
    np.testing.assert_allclose(scores_t.grad.cpu().numpy(), expected_grad, atol=1e-12)


@pytest.mark.parametrize("histogram", [True, False])
def test_count_at_most_both_ways(histogram):
    gen = torch.Generator().manual_seed(5)
    values = torch.randint(0, 13, (4, 9), generator=gen).sort(dim=1).values
    counts = _ap_search.count_at_most(values, 12, histogram=histogram)
    expected = (values.unsqueeze(1) <= torch.arange(12).view(1, 12, 1)).sum(2)
    assert torch.equal(counts, expected)


def test_level_choice_stays_within_memory_and_covers_every_negative():
    for p_max, q_max in [(1, 1), (3, 700), (256, 768), (16_384, 49_152), (200_000, 10)]:
        for device in ("cpu", "cuda"):
            levels = _ap_search.choose_levels(p_max, q_max, 20, torch.device(device))
            strides = _ap_search.strides_for(levels, q_max)
            assert strides[-1] == 1 and all(
                a % b == 0 for a, b in zip(strides, strides[1:], strict=False)
            )
            assert levels == 1 or strides[0] <= q_max
            sizes = _ap_search.level_sizes(strides, p_max, q_max)
            assert max(sizes) * 20 <= _ap_search._MAX_LEVEL_ELEMENTS


def test_zero_exactly_with_a_large_margin(device):
    rng = np.random.default_rng(1)
    negatives = rng.normal(size=(30, 2))
    positives = rng.normal(size=(10, 2)) + 30 / 4 + 10  # margin above Q / 4
    scores = torch.tensor(np.concatenate([positives, negatives]), device=device)
    targets = torch.zeros(40, 2, dtype=torch.bool, device=device)
    targets[:10] = True
    scores.requires_grad_(True)
    loss = ap_svm_loss(scores, targets, "none")
    assert torch.all(loss == 0)
    loss.sum().backward()
    assert torch.all(scores.grad == 0)
    # one negative above every positive: strictly positive loss
    scores.data[20, 0] = 100.0
    assert ap_svm_loss(scores, targets, "none")[0] > 0


def test_columns_without_positive_or_negative_are_reported_not_averaged():
    scores = torch.randn(6, 3)
    targets = torch.tensor([[1, 0, 1]] * 3 + [[0, 0, 1]] * 3)
    per_column = ap_svm_loss(scores, targets, "none")
    assert not torch.isnan(per_column[0]) and torch.isnan(per_column[1:]).all()
    assert ap_svm_loss(scores, targets).item() == pytest.approx(per_column[0].item())
    assert ap_svm_loss(scores, targets, "sum").item() == pytest.approx(per_column[0].item())
    with pytest.warns(UserWarning, match="no column has both"):
        zero = ap_svm_loss(scores[:, 1:], targets[:, 1:])
    assert zero.item() == 0


def test_vector_input_and_module(device):
    scores = torch.tensor([0.3, -1.0, 2.0, 0.5], device=device)
    targets = torch.tensor([1, 0, 0, 1], device=device)
    loss = ap_svm_loss(scores, targets, "none")
    assert loss.dim() == 0
    expected = brute_force_ap_svm_loss(scores.cpu().numpy(), targets.cpu().numpy())
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert APSVMLoss()(scores, targets).item() == pytest.approx(expected, abs=1e-6)


def test_float32_and_float64_agree():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(200, 5))
    targets = torch.tensor(rng.random((200, 5)) < 0.3)
    low = ap_svm_loss(torch.tensor(scores, dtype=torch.float32), targets, "none")
    high = ap_svm_loss(torch.tensor(scores), targets, "none")
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.double(), high, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    scores = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"targets must be 0 or 1, got 2 at row 1, column 0"):
        ap_svm_loss(scores, torch.tensor([[0, 1], [2, 0], [1, 0], [0, 1]]))
    with pytest.raises(ValueError, match="targets must be a tensor of shape"):
        ap_svm_loss(scores, torch.ones(4))
    bad = scores.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="scores must be finite, got nan at row 3, column 1"):
        ap_svm_loss(bad, torch.ones(4, 2))
    with pytest.raises(ValueError, match="reduction must be one of"):
        ap_svm_loss(scores, torch.ones(4, 2), reduction="max")
    with pytest.raises(ValueError, match="reduction"):
        APSVMLoss("avg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ap_svm_loss(scores, torch.tensor([[0, 1], [1, 0], [1, 0], [0, 1]]))
