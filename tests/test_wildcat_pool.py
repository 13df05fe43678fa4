"""wildcat_pool against the naive sort-everything reference, special cases, masks, gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from negev.nn import WildcatPool, create_pool
from negev.nn.functional import wildcat_pool, wildcat_selection
from negev.testing import naive_wildcat_pool, sort_wildcat_pool
from tests.strategies import counts, region_scores


def close(a: torch.Tensor, b: torch.Tensor, **kw) -> None:
    torch.testing.assert_close(a.double().cpu(), b.double().cpu(), **kw)


@given(region_scores(), counts, st.one_of(st.none(), st.just(0), counts), st.floats(-2, 2))
def test_matches_naive_reference(data, kmax, kmin, alpha):
    scores, mask = data
    close(
        wildcat_pool(scores, kmax, kmin, alpha, mask=mask),
        naive_wildcat_pool(scores, kmax, kmin, alpha, mask=mask),
    )


@given(region_scores(with_mask=False), counts, counts, st.floats(-2, 2))
def test_matches_full_sort_reference(data, kmax, kmin, alpha):
    scores, _ = data
    close(wildcat_pool(scores, kmax, kmin, alpha), sort_wildcat_pool(scores, kmax, kmin, alpha))


@given(region_scores(ties=False), counts, st.one_of(st.just(0), counts), st.floats(-2, 2))
def test_selection_is_what_the_pooling_averages(data, kmax, kmin, alpha):
    scores, mask = data
    high, low = wildcat_selection(scores, kmax, kmin, mask=mask)
    keep = torch.ones_like(high) if mask is None else mask.unsqueeze(1).expand_as(high)
    assert not (high & ~keep).any() and not (low & ~keep).any()
    top = (scores * high).flatten(2).sum(2) / high.flatten(2).sum(2)
    expected = (
        top if kmin == 0 else top + alpha * (scores * low).flatten(2).sum(2) / low.flatten(2).sum(2)
    )
    close(expected, wildcat_pool(scores, kmax, kmin, alpha, mask=mask))
    # every kept high value is >= every valid value left out (and the mirror for low)
    flat, valid = scores.flatten(2), keep.flatten(2)
    for b, c in torch.cartesian_prod(
        torch.arange(scores.shape[0]), torch.arange(scores.shape[1])
    ).tolist():
        chosen, rest = high.flatten(2)[b, c], valid[b, c] & ~high.flatten(2)[b, c]
        if rest.any():
            assert flat[b, c][chosen].min() >= flat[b, c][rest].max()


def test_module_selection_drops_the_low_end_without_alpha():
    scores = torch.randn(2, 3, 4, 5)
    high, low = WildcatPool(kmax=2, kmin=3, alpha=0.0).selection(scores)
    assert high.flatten(2).sum(2).eq(2).all() and not low.any()
    high, low = create_pool("wildcat", kmax=0.25, kmin=0.1, alpha=0.7).selection(scores)
    assert high.flatten(2).sum(2).eq(5).all() and low.flatten(2).sum(2).eq(2).all()


@given(region_scores())
def test_special_cases(data):
    scores, mask = data
    batch, classes = scores.shape[:2]
    flat = scores.reshape(batch, classes, -1)
    keep = torch.ones_like(flat, dtype=torch.bool) if mask is None else mask.reshape(batch, 1, -1)
    n = flat.shape[2]
    maximum = flat.masked_fill(~keep, float("-inf")).amax(2)
    minimum = flat.masked_fill(~keep, float("inf")).amin(2)
    mean = (flat * keep).sum(2) / keep.sum(2)
    # max: kmax=1, alpha=0
    close(wildcat_pool(scores, kmax=1, alpha=0.0, mask=mask), maximum)
    # global average: kmax=n, alpha=0
    close(wildcat_pool(scores, kmax=n, alpha=0.0, mask=mask), mean)
    # max+min: (1, 1, 1)
    close(wildcat_pool(scores, 1, 1, 1.0, mask=mask), maximum + minimum)
    # the named presets build the same poolings
    close(create_pool("max")(scores, mask), maximum)
    close(create_pool("gap")(scores, mask), mean)
    close(create_pool("maxmin", alpha=1.0)(scores, mask), maximum + minimum)


@given(region_scores(with_mask=False), st.integers(1, 6))
def test_weldon_is_top_k_plus_bottom_k(data, k):
    scores, _ = data
    flat = scores.reshape(*scores.shape[:2], -1)
    k_eff = min(k, flat.shape[2])
    ordered = flat.sort(dim=2).values
    expected = ordered[..., -k_eff:].mean(2) + ordered[..., :k_eff].mean(2)
    close(wildcat_pool(scores, k, k, 1.0), expected)
    close(create_pool("weldon", kmax=k)(scores), expected)


@given(region_scores(ties=False), counts, counts, st.floats(-2, 2), st.data())
def test_masked_regions_never_influence(data, kmax, kmin, alpha, draw):
    scores, mask = data
    if mask is None:
        mask = torch.ones(scores.shape[0], *scores.shape[2:], dtype=torch.bool)
    junk = draw.draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30, -1e30]))
    spoiled = scores.clone()
    spoiled[~mask.unsqueeze(1).expand_as(scores)] = junk
    spoiled.requires_grad_(True)
    out = wildcat_pool(spoiled, kmax, kmin, alpha, mask=mask)
    close(out, wildcat_pool(scores, kmax, kmin, alpha, mask=mask))
    out.sum().backward()
    assert torch.all(spoiled.grad[~mask.unsqueeze(1).expand_as(scores)] == 0)


def test_fractional_k_rounds_per_sample_and_keeps_one():
    # sample 0 has 10 valid regions, sample 1 has 3: k=0.25 -> round(2.5)=2 and round(0.75)=1
    scores = torch.arange(10.0).reshape(1, 1, 10).repeat(2, 1, 1)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 3:] = False
    out = wildcat_pool(scores, kmax=0.25, kmin=0.01, alpha=1.0, mask=mask)
    assert out[0, 0].item() == pytest.approx((9 + 8) / 2 + 0.0)
    assert out[1, 0].item() == pytest.approx(2.0 + 0.0)


def test_k_larger_than_regions_uses_all():
    scores = torch.tensor([[[1.0, 2.0, 6.0]]])
    assert wildcat_pool(scores, kmax=50, kmin=50, alpha=1.0).item() == pytest.approx(6.0)


def test_gradient_flows_only_into_selected_regions():
    torch.manual_seed(0)
    scores = torch.randn(3, 4, 7, 5, dtype=torch.float64, requires_grad=True)
    wildcat_pool(scores, kmax=3, kmin=2, alpha=0.5).sum().backward()
    grad = scores.grad.reshape(3, 4, -1)
    flat = scores.detach().reshape(3, 4, -1)
    order = flat.argsort(dim=2, descending=True)
    expected = torch.zeros_like(grad)
    expected.scatter_(2, order[..., :3], 1 / 3)
    expected.scatter_(2, order[..., -2:], 0.5 / 2)
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("k", [(1, 1, 1.0), (3, 2, 0.7), (0.3, 0.2, -0.5), (2, 0, 1.0)])
def test_gradcheck(k, masked):
    torch.manual_seed(1)
    scores = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    mask = None
    if masked:
        mask = torch.rand(2, 4, 5) < 0.7
        mask[:, 0, 0] = True
    assert torch.autograd.gradcheck(lambda s: wildcat_pool(s, *k, mask=mask), (scores,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_dtypes(device, dtype):
    torch.manual_seed(2)
    scores = torch.randn(2, 3, 6, 6, device=device)
    mask = torch.rand(2, 6, 6, device=device) < 0.8
    mask[:, 0, 0] = True
    for m in (None, mask):
        out = wildcat_pool(scores.to(dtype), 0.2, 0.1, 0.7, mask=m)
        assert out.dtype == dtype and out.device == scores.device
        close(out, wildcat_pool(scores, 0.2, 0.1, 0.7, mask=m), atol=0.05, rtol=0.02)


def test_module_matches_function(device):
    scores = torch.randn(4, 5, 3, 3, device=device)
    pool = WildcatPool(kmax=2, kmin=3, alpha=0.5)
    close(pool(scores), wildcat_pool(scores, 2, 3, 0.5))
    assert "kmax=2" in repr(pool)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kmax": -1}, "kmax must be >= 0"),
        ({"kmax": 0}, "kmax must be > 0"),
        ({"kmax": 2.5}, "kmax must be an integer count"),
        ({"kmin": -0.5}, "kmin must be >= 0"),
        ({"alpha": float("nan")}, "alpha must be finite"),
        ({"kmax": "3"}, "kmax must be an int or a float"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    scores = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=message):
        wildcat_pool(scores, **kwargs)
    with pytest.raises(ValueError, match=message):
        WildcatPool(**kwargs)


def test_bad_inputs_are_reported():
    scores = torch.randn(3, 2, 4)
    with pytest.raises(ValueError, match="mask must have shape"):
        wildcat_pool(scores, mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        wildcat_pool(scores, mask=torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"scores must have shape \(B, C, \*regions\)"):
        wildcat_pool(torch.randn(3, 4))
    with pytest.raises(ValueError, match="floating point"):
        wildcat_pool(torch.ones(3, 2, 4, dtype=torch.long))
    empty = torch.ones(3, 4, dtype=torch.bool)
    empty[1] = False
    with pytest.raises(ValueError, match=r"no valid region for batch index \[1\]"):
        wildcat_pool(scores, mask=empty)
    nan = scores.clone()
    nan[2, 1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN in a valid region of batch index 2, class 1"):
        wildcat_pool(nan)
    with pytest.raises(ValueError, match="batch index 2, class 1"):
        wildcat_pool(nan, mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        create_pool("median")
