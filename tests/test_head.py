"""class_wise_pool and EvidenceHead against explicit loops and convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negev.nn import (
    ClassWisePool,
    EvidenceHead,
    LinearEvidencePool,
    LSEPool,
    WildcatPool,
    create_pool,
)
from negev.nn.functional import class_wise_pool, wildcat_pool
from negev.testing.reference import naive_wildcat_pool


def test_class_wise_pool_averages_consecutive_channels():
    maps = torch.randn(2, 3 * 4, 5, 6)
    out = class_wise_pool(maps, 4)
    assert out.shape == (2, 3, 5, 6)
    for c in range(3):
        expected = sum(maps[:, c * 4 + m] for m in range(4)) / 4
        torch.testing.assert_close(out[:, c], expected)
    torch.testing.assert_close(ClassWisePool(4)(maps), out)
    assert class_wise_pool(maps, 1) is maps


def test_class_wise_pool_bad_arguments():
    with pytest.raises(ValueError, match="not a multiple of num_maps=5"):
        class_wise_pool(torch.randn(2, 12, 3), 5)
    with pytest.raises(ValueError, match="num_maps must be an int >= 1"):
        ClassWisePool(0)


def test_evidence_head_matches_conv_classwise_pool(device):
    torch.manual_seed(0)
    head = EvidenceHead(8, 3, num_maps=2, pool=WildcatPool(2, 1, 0.7)).to(device)
    features = torch.randn(4, 8, 5, 6, device=device)
    scores, maps = head(features)
    weight = head.proj.weight.reshape(6, 8, 1, 1)
    raw = F.conv2d(features, weight, head.proj.bias)
    expected_maps = raw.reshape(4, 3, 2, 5, 6).mean(2)
    torch.testing.assert_close(maps, expected_maps, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scores, wildcat_pool(expected_maps, 2, 1, 0.7), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("regions", [(7,), (4, 5), (2, 3, 4)])
def test_evidence_head_any_region_dims_with_mask(regions):
    head = EvidenceHead(6, 4, num_maps=3, pool=LSEPool(5.0, -5.0, 0.5))
    features = torch.randn(2, 6, *regions)
    mask = torch.rand(2, *regions) < 0.6
    mask.reshape(2, -1)[:, 0] = True
    out = head(features, mask)
    assert out.scores.shape == (2, 4) and out.maps.shape == (2, 4, *regions)
    # a masked region's features do not change the scores
    features2 = features.clone()
    features2[~mask.unsqueeze(1).expand_as(features)] = 1e6
    torch.testing.assert_close(head(features2, mask).scores, out.scores)


def test_evidence_head_defaults_to_max_plus_min_and_checks_shapes():
    head = EvidenceHead(3, 2)
    features = torch.randn(1, 3, 4)
    scores, maps = head(features)
    torch.testing.assert_close(scores, maps.amax(2) + maps.amin(2))
    with pytest.raises(ValueError, match=r"features must have shape \(B, 3, \*regions\)"):
        head(torch.randn(1, 5, 4))
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        EvidenceHead(3, 0)


def _raw_maps(head: EvidenceHead, features: torch.Tensor) -> torch.Tensor:
    """The C * M projected maps, (B, C*M, *regions), by an explicit einsum."""
    return torch.einsum("bd...,kd->bk...", features, head.proj.weight) + head.proj.bias.reshape(
        1, -1, *[1] * (features.dim() - 2)
    )


@pytest.mark.parametrize("masked", [False, True])
def test_pool_each_map_averages_the_scores_of_each_map_pooled_alone(masked):
    """y_c = mean_m pool(z_cm): a naive sort of each map's valid scores, map by map."""
    torch.manual_seed(0)
    head = EvidenceHead(6, 3, num_maps=4, pool=WildcatPool(0.3, 2, 0.7), pool_each_map=True)
    features = torch.randn(2, 6, 5, 4)
    mask = (torch.rand(2, 5, 4) < 0.7) if masked else None
    if masked:
        mask[:, 0, 0] = True
    scores, maps = head(features, mask)
    raw = _raw_maps(head, features)
    per_map = naive_wildcat_pool(raw, 0.3, 2, 0.7, mask).reshape(2, 3, 4)
    torch.testing.assert_close(scores.double(), per_map.mean(2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(maps, raw.reshape(2, 3, 4, 5, 4).mean(2))  # shown: the mean map
    # WILDCAT's order pools the mean map instead: not the same with a hard selection
    together = naive_wildcat_pool(raw.reshape(2, 3, 4, 5, 4).mean(2), 0.3, 2, 0.7, mask)
    assert (together - per_map.mean(2)).abs().max() > 1e-3


def test_pool_each_map_changes_nothing_for_one_map_or_average_pooling():
    torch.manual_seed(0)
    features, mask = torch.randn(3, 5, 7), torch.rand(3, 7) < 0.8
    mask[:, 0] = True
    for maps, pool in ((1, WildcatPool(2, 1, 0.5)), (3, create_pool("gap"))):
        apart = EvidenceHead(5, 2, num_maps=maps, pool=pool, pool_each_map=True)
        together = EvidenceHead(5, 2, num_maps=maps, pool=pool)
        together.load_state_dict(apart.state_dict())
        torch.testing.assert_close(apart(features, mask).scores, together(features, mask).scores)


def test_pool_each_map_gives_each_map_its_own_attention():
    """An attention pool sees C*M rows: attention (B, C*M, N), one per map, the scores of a class
    the mean of its maps' attention-pooled scores."""
    torch.manual_seed(0)
    head = EvidenceHead(4, 2, num_maps=3, pool=create_pool("abmil"), pool_each_map=True)
    assert head.pool_classes == 6 and head.attend.out_features == 6
    features = torch.randn(2, 4, 9)
    raw = _raw_maps(head, features)
    logits = torch.einsum("bdn,kd->bkn", features, head.attend.weight) + head.attend.bias[:, None]
    expected = (raw * logits.softmax(-1)).sum(-1).reshape(2, 2, 3).mean(2)
    torch.testing.assert_close(head(features).scores, expected)


def test_pool_each_map_gradients_and_selection():
    torch.manual_seed(0)
    head = EvidenceHead(3, 2, num_maps=2, pool=WildcatPool(2, 1, 1.0), pool_each_map=True).double()
    features = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: head(f).scores, (features,))
    high, low = head.selection(features.detach())
    raw = _raw_maps(head, features.detach()).reshape(2, 2, 2, 6)
    for b in range(2):
        for c in range(2):
            tops = {int(i) for m in range(2) for i in raw[b, c, m].argsort(descending=True)[:2]}
            bottoms = {int(raw[b, c, m].argmin()) for m in range(2)}
            assert set(high[b, c].nonzero().flatten().tolist()) == tops
            assert set(low[b, c].nonzero().flatten().tolist()) == bottoms
    assert EvidenceHead(3, 2, pool=LSEPool(5.0, -5.0, 1.0)).selection(features.detach()) is None
    with pytest.raises(ValueError, match="pool_each_map must be True or False"):
        EvidenceHead(3, 2, pool_each_map="yes")


def test_spread_maps_moves_tied_maps_apart_around_their_mean():
    """A warm start writes one row into every map of a class; pooled each on its own, tied maps
    would get the same gradients forever. ``spread_maps`` keeps their mean (so any linear term)
    and moves each class's maps apart by the norm of its mean row."""
    torch.manual_seed(0)
    head = EvidenceHead(5, 3, num_maps=4, pool=WildcatPool(2, 1, 1.0), pool_each_map=True)
    assert not head.maps_tied()  # a fresh head: random, distinct maps
    with torch.no_grad():
        head.proj.weight.copy_(head.proj.weight[::4].repeat_interleave(4, 0))
        head.proj.bias.copy_(head.proj.bias[::4].repeat_interleave(4))
        head.proj.weight[4:8] = 0.0  # a class at 0 stays there
    assert head.maps_tied()
    rows = head.proj.weight.detach().reshape(3, 4, 5).clone()
    head.spread_maps(torch.Generator().manual_seed(1))
    spread = head.proj.weight.detach().reshape(3, 4, 5)
    assert not head.maps_tied()
    torch.testing.assert_close(spread.mean(1), rows[:, 0], atol=1e-6, rtol=0)
    departure = (spread - rows[:, :1]).square().sum(2).mean(1).sqrt()
    torch.testing.assert_close(departure, rows[:, 0].norm(dim=1), atol=1e-6, rtol=1e-5)
    assert not spread[1].any()
    again = EvidenceHead(5, 3, num_maps=4, pool=WildcatPool(2, 1, 1.0), pool_each_map=True)
    with torch.no_grad():
        again.proj.weight.copy_(rows.reshape(12, 5))
    again.spread_maps(torch.Generator().manual_seed(1))
    torch.testing.assert_close(again.proj.weight.detach().reshape(3, 4, 5), spread)  # seeded
    assert not EvidenceHead(5, 3).maps_tied()  # one map: nothing to tie


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_spread_maps_is_the_same_on_every_device_and_dtype(device, dtype):
    """Drawn and computed on the CPU in float64 from a CPU generator: the same spread wherever
    the head lives (a CUDA head included), cast to its dtype."""
    torch.manual_seed(0)
    rows = torch.randn(2, 1, 6).expand(2, 3, 6).reshape(6, 6)

    def spread(where, kind, start):
        head = EvidenceHead(6, 2, num_maps=3, pool_each_map=True).to(where, kind)
        with torch.no_grad():
            head.proj.weight.copy_(start)
        head.spread_maps(torch.Generator().manual_seed(3))
        return head.proj.weight.detach().cpu()

    exact = spread("cpu", torch.float64, rows.to(dtype).double())  # from the rows the head holds
    torch.testing.assert_close(spread(device, dtype, rows), exact.to(dtype))
    one = EvidenceHead(6, 2, num_maps=1, pool_each_map=True)
    before = one.proj.weight.detach().clone()
    one.spread_maps(torch.Generator().manual_seed(3))
    assert torch.equal(one.proj.weight, before)  # one map: nothing to spread (no 0 / 0)


def test_a_summing_pool_with_a_bias_per_class_leaves_no_bias_on_the_regions():
    """Summed over n regions a per-region bias is n * b: under LinearEvidencePool(linear="sum")
    with a bias per class the projection's bias is 0 and frozen, so scores do not change with the
    region count at equal features; a mean term, or a pool sharing one bias, keeps it trained."""
    head = EvidenceHead(4, 3, pool=LinearEvidencePool(linear="sum", num_classes=3))
    assert not head.proj.bias.requires_grad and not head.proj.bias.any()
    features = torch.zeros(2, 4, 50)
    short, long = head(features[..., :5]).scores, head(features).scores
    torch.testing.assert_close(short, long)  # zero features: only biases, not counted n times
    for pool in (LinearEvidencePool(linear="mean", num_classes=3), LinearEvidencePool()):
        assert EvidenceHead(4, 3, pool=pool).proj.bias.requires_grad
