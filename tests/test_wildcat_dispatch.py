"""wildcat_pool's choice of implementation (choose_path) and the paths' agreement on the CPU.

The "sort" path (one torch.sort, chosen on a GPU for many long rows with k > 2) runs on the CPU
here by making wildcat_pool believe the fused kernels are available and forcing the path; the
"triton" path is compared with the others under Triton's interpreter in test_wildcat_triton.py.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from negev.nn.functional import _wildcat_triton, wildcat_pool
from negev.testing import naive_wildcat_pool, sort_wildcat_pool
from tests.strategies import counts, region_scores

wildcat = importlib.import_module("negev.nn.functional.wildcat")
choose_path = wildcat.choose_path


@pytest.mark.parametrize(
    ("batch", "classes", "side", "k", "expected"),
    [
        # the H200 cells where the kernel lost to the full sort in GPU time (0.44x-0.86x): sort
        (64, 80, 28, 0.1, "sort"),
        (64, 80, 28, 0.2, "sort"),
        (64, 80, 28, 0.5, "sort"),
        (256, 80, 28, 0.2, "sort"),
        (64, 20, 28, 0.5, "sort"),
        (8, 80, 28, 0.5, "sort"),
        # where it won: k = 1 (reductions), short rows, small sizes
        (64, 80, 28, 1, "triton"),
        (256, 80, 28, 1, "triton"),
        (64, 1000, 14, 0.2, "triton"),
        (64, 80, 14, 0.5, "triton"),
        (32, 80, 14, 0.2, "triton"),
        (8, 20, 28, 0.5, "triton"),
    ],
)
def test_choose_path_follows_the_measured_crossover(batch, classes, side, k, expected):
    regions = side * side
    k_most = k if k >= 1 else max(1, round(k * regions))
    assert choose_path(batch * classes, regions, k_most, fused=True) == expected


@given(st.integers(1, 10**6), st.integers(1, 4096), st.integers(1, 4096))
def test_choose_path_rule(rows, regions, k_most):
    assert choose_path(rows, regions, k_most, fused=False) == "select"
    path = choose_path(rows, regions, k_most, fused=True)
    small = k_most <= 2 or regions <= 256 or rows * regions <= 2**18
    assert path == ("triton" if small else "sort")


def pool_by(monkeypatch, path, scores, kmax, kmin, alpha, mask=None, grad=None):
    """wildcat_pool on ``path`` ("select" or "sort"): (out, d out / d scores)."""
    with monkeypatch.context() as patch:
        if path != "select":
            patch.setattr(_wildcat_triton, "supports", lambda flat: True)
            patch.setattr(wildcat, "choose_path", lambda *args, **kwargs: path)
        scores = scores.detach().clone().requires_grad_(True)
        out = wildcat_pool(scores, kmax, kmin, alpha, mask=mask)
    out.backward(torch.ones_like(out) if grad is None else grad)
    return out.detach(), scores.grad


@pytest.mark.parametrize(
    ("shape", "kmax", "kmin", "alpha"),
    [
        ((3, 4, 28, 28), 0.2, 0.2, 0.7),  # a large-table cell, shrunk
        ((2, 3, 10), 3, 2, 0.7),
        ((2, 3, 4, 5), 0.2, 0.1, -0.5),
        ((2, 2, 7), 1, 1, 1.0),  # k = 1 on the sort path too
        ((1, 2, 5), 4, 4, 0.5),  # both ends overlap: kmax + kmin > N
        ((2, 2, 6), 2, 0, 1.0),  # no low term
        ((2, 1, 8), 3, 3, 0.0),  # alpha 0
        ((1, 1, 1), 1, 1, 1.0),  # one region
        ((2, 2, 300), 250, 120, 0.3),  # overlapping, long rows
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sort_path_equals_the_select_path(monkeypatch, shape, kmax, kmin, alpha, dtype):
    torch.manual_seed(0)
    scores = torch.randn(shape, dtype=dtype)  # distinct values: one valid selection
    grad = torch.randn(shape[:2], dtype=dtype)
    out, grad_in = pool_by(monkeypatch, "sort", scores, kmax, kmin, alpha, grad=grad)
    expected, expected_grad = pool_by(monkeypatch, "select", scores, kmax, kmin, alpha, grad=grad)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad_in, expected_grad)
    reference = naive_wildcat_pool(scores, kmax, kmin, alpha)
    torch.testing.assert_close(out, reference.to(dtype))


@given(region_scores(ties=False, max_regions=40, with_mask=False), counts, counts, st.floats(-2, 2))
@settings(max_examples=60, deadline=None)
def test_sort_path_matches_the_references(data, kmax, kmin, alpha):
    """Values vs a loop over sorted Python floats, gradients vs autograd through a full sort."""
    scores, _ = data
    with pytest.MonkeyPatch.context() as monkeypatch:
        out, grad_in = pool_by(monkeypatch, "sort", scores, kmax, kmin, alpha)
    torch.testing.assert_close(out, naive_wildcat_pool(scores, kmax, kmin, alpha))
    leaf = scores.clone().requires_grad_(True)
    sort_wildcat_pool(leaf, kmax, kmin, alpha).sum().backward()
    torch.testing.assert_close(grad_in, leaf.grad)


def test_sort_path_gradcheck(monkeypatch):
    scores = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    monkeypatch.setattr(_wildcat_triton, "supports", lambda flat: True)
    monkeypatch.setattr(wildcat, "choose_path", lambda *args, **kwargs: "sort")
    assert torch.autograd.gradcheck(lambda s: wildcat_pool(s, 3, 2, 0.6), (scores,))


def test_sort_path_reports_nan(monkeypatch):
    scores = torch.randn(3, 4, 10)
    scores[2, 1, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN in a valid region of batch index 2, class 1"):
        pool_by(monkeypatch, "sort", scores, 3, 3, 1.0)


def test_masked_fallback_equals_the_cpu_path(monkeypatch):
    """With a mask, a "sort" choice takes the masked top-k path (no Triton call)."""
    torch.manual_seed(1)
    scores = torch.randn(3, 2, 30)
    mask = torch.rand(3, 30) < 0.6
    mask[:, 0] = True
    out, grad_in = pool_by(monkeypatch, "sort", scores, 0.3, 0.2, 0.7, mask=mask)
    expected, expected_grad = pool_by(monkeypatch, "select", scores, 0.3, 0.2, 0.7, mask=mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad_in, expected_grad)
    torch.testing.assert_close(out.double(), naive_wildcat_pool(scores, 0.3, 0.2, 0.7, mask))


def test_wildcat_pool_runs_the_path_choose_path_names(monkeypatch):
    calls = []

    def fake_kernels(flat, *args):
        calls.append(flat.shape)
        return flat.new_zeros(flat.shape[:2])

    monkeypatch.setattr(_wildcat_triton, "supports", lambda flat: True)
    monkeypatch.setattr(_wildcat_triton, "pool", fake_kernels)
    torch.manual_seed(2)
    many = torch.randn(2, 700, 28, 28)  # 1,400 rows x 784 regions > 2^20, k = 157 > 2: sort
    out = wildcat_pool(many, 0.2, 0.2, 0.7)
    assert calls == []
    torch.testing.assert_close(out, sort_wildcat_pool(many, 0.2, 0.2, 0.7))
    wildcat_pool(many, 1, 1, 0.7)  # k = 1: the kernels' reductions
    wildcat_pool(many[:1, :100], 0.2, 0.2, 0.7)  # 100 x 784 elements: launch-bound, kernels
    assert calls == [torch.Size([2, 700, 784]), torch.Size([1, 100, 784])]
