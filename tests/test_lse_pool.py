"""lse_pool against the term-by-term formula, its limits, stability, masks and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from negev.nn import LSEPool, create_pool
from negev.nn.functional import lse_pool
from negev.testing import naive_lse_pool
from tests.strategies import region_scores

betas = st.floats(0.05, 5.0)


@given(region_scores(), betas, betas, st.floats(-2, 2))
def test_matches_formula(data, beta_pos, beta_neg, alpha):
    scores, mask = data
    torch.testing.assert_close(
        lse_pool(scores, beta_pos, -beta_neg, alpha, mask=mask),
        naive_lse_pool(scores, beta_pos, -beta_neg, alpha, mask=mask),
    )


@given(region_scores(), st.floats(-1.5, 1.5))
def test_tends_to_max_plus_alpha_min(data, alpha):
    scores, mask = data
    batch, classes = scores.shape[:2]
    flat = scores.reshape(batch, classes, -1)
    keep = torch.ones_like(flat, dtype=torch.bool) if mask is None else mask.reshape(batch, 1, -1)
    expected = flat.masked_fill(~keep, -math.inf).amax(2) + alpha * flat.masked_fill(
        ~keep, math.inf
    ).amin(2)
    beta = 1e4
    out = lse_pool(scores, beta, -beta, alpha, mask=mask)
    # |soft max - max| <= log(n) / beta for each term
    bound = (1 + abs(alpha)) * math.log(flat.shape[2]) / beta + 1e-9
    assert torch.all((out - expected).abs() <= bound)


@given(region_scores(), st.floats(-1.5, 1.5), st.sampled_from([0.0, 1e-9, 1e-6]))
def test_tends_to_scaled_mean(data, alpha, beta):
    scores, mask = data
    batch, classes = scores.shape[:2]
    flat = scores.reshape(batch, classes, -1)
    keep = torch.ones_like(flat, dtype=torch.bool) if mask is None else mask.reshape(batch, 1, -1)
    mean = (flat * keep).sum(2) / keep.sum(2)
    torch.testing.assert_close(
        lse_pool(scores, beta, -beta, alpha, mask=mask), (1 + alpha) * mean, atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [1e-8, 1.0, 1e2, 1e4])
def test_stable_for_large_scores_and_betas(dtype, beta):
    torch.manual_seed(0)
    scores = (torch.randn(4, 3, 50, dtype=dtype) * 100).requires_grad_(True)
    out = lse_pool(scores, beta, -beta, 0.7)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(scores.grad).all()


@given(region_scores(ties=False), betas, st.data())
def test_masked_regions_never_influence(data, beta, draw):
    scores, mask = data
    if mask is None:
        mask = torch.ones(scores.shape[0], *scores.shape[2:], dtype=torch.bool)
    junk = draw.draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30]))
    hidden = ~mask.unsqueeze(1).expand_as(scores)
    spoiled = scores.clone()
    spoiled[hidden] = junk
    spoiled.requires_grad_(True)
    out = lse_pool(spoiled, beta, -beta, 0.5, mask=mask)
    torch.testing.assert_close(out, lse_pool(scores, beta, -beta, 0.5, mask=mask))
    out.sum().backward()
    assert torch.all(spoiled.grad[hidden] == 0)


@pytest.mark.parametrize("betas", [(1.0, -1.0), (10.0, -0.1), (1e-7, -3.0)])
def test_gradcheck(betas):
    torch.manual_seed(3)
    scores = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 4, 4) < 0.7
    mask[:, 0, 0] = True
    for m in (None, mask):
        assert torch.autograd.gradcheck(lambda s, m=m: lse_pool(s, *betas, 0.6, mask=m), (scores,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_dtypes(device, dtype):
    scores = torch.randn(2, 3, 5, 5, device=device)
    out = lse_pool(scores.to(dtype), 2.0, -2.0, 0.5)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), lse_pool(scores, 2.0, -2.0, 0.5), atol=0.05, rtol=0.02)


def test_module_and_preset():
    scores = torch.randn(2, 3, 7)
    torch.testing.assert_close(LSEPool(2.0, -3.0, 0.5)(scores), lse_pool(scores, 2.0, -3.0, 0.5))
    torch.testing.assert_close(
        create_pool("lse", beta_pos=2.0, beta_neg=-3.0, alpha=0.5)(scores),
        lse_pool(scores, 2.0, -3.0, 0.5),
    )


def test_bad_arguments():
    scores = torch.randn(2, 3, 7)
    with pytest.raises(ValueError, match="beta_pos must be finite"):
        lse_pool(scores, beta_pos=float("inf"))
    with pytest.raises(ValueError, match="beta_neg must be finite"):
        LSEPool(beta_neg=float("nan"))
    with pytest.raises(ValueError, match="alpha must be finite"):
        lse_pool(scores, alpha=float("-inf"))
    nan = scores.clone()
    nan[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="batch index 1, class 2"):
        lse_pool(nan)
    empty = torch.ones(2, 7, dtype=torch.bool)
    empty[0] = False
    with pytest.raises(ValueError, match=r"batch index \[0\]"):
        lse_pool(scores, mask=empty)
