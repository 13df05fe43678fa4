"""class_wise_pool and EvidenceHead against explicit loops and convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negev.nn import ClassWisePool, EvidenceHead, LSEPool, WildcatPool
from negev.nn.functional import class_wise_pool, wildcat_pool


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
