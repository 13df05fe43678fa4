"""Linear-softmax and attention pooling (the audio-tagging baselines) against plain loops."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given

from negev.nn import AttentionPool, EvidenceHead, create_pool
from negev.nn.functional import attention_pool, linear_softmax_pool
from tests.strategies import region_scores


def valid_lists(scores, mask):
    batch, classes = scores.shape[:2]
    flat = scores.reshape(batch, classes, -1)
    keep = (
        torch.ones(batch, flat.shape[2], dtype=torch.bool)
        if mask is None
        else mask.reshape(batch, -1)
    )
    for b in range(batch):
        for c in range(classes):
            yield b, c, [float(v) for v, k in zip(flat[b, c], keep[b], strict=True) if k]


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p) - math.log1p(-p)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@given(region_scores())
def test_linear_softmax_matches_the_formula(data):
    scores, mask = data
    out = linear_softmax_pool(scores, mask)
    for b, c, values in valid_lists(scores, mask):
        p = [sigmoid(v) for v in values]
        expected = logit(math.fsum(q * q for q in p) / math.fsum(p))
        assert float(out[b, c]) == pytest.approx(expected, abs=1e-6)


@given(region_scores())
def test_attention_matches_the_formula(data):
    scores, mask = data
    attention = torch.sin(3 * scores) * 2  # any attention logits
    out = attention_pool(scores, attention, mask)
    flat_attention = attention.reshape(*attention.shape[:2], -1)
    for b, c, values in valid_lists(scores, mask):
        keep = (
            range(flat_attention.shape[2])
            if mask is None
            else mask.reshape(mask.shape[0], -1)[b].nonzero().flatten().tolist()
        )
        weights = [math.exp(float(flat_attention[b, c, h])) for h in keep]
        total = math.fsum(weights)
        expected = logit(
            math.fsum(w / total * sigmoid(v) for w, v in zip(weights, values, strict=True))
        )
        assert float(out[b, c]) == pytest.approx(expected, abs=1e-6)


def test_special_cases():
    z = torch.randn(4, 3, 7, dtype=torch.float64)
    # one region: both poolings give back its logit
    torch.testing.assert_close(linear_softmax_pool(z[..., :1]), z[..., 0])
    torch.testing.assert_close(attention_pool(z[..., :1], torch.randn(4, 3, 1)), z[..., 0])
    # uniform attention: the mean probability
    mean_p = torch.sigmoid(z).mean(2)
    torch.testing.assert_close(attention_pool(z, torch.zeros_like(z)), torch.logit(mean_p))
    # linear softmax lies between the mean and the max probability
    p = torch.sigmoid(linear_softmax_pool(z))
    assert (p >= mean_p - 1e-12).all() and (p <= torch.sigmoid(z).amax(2) + 1e-12).all()


def test_masked_regions_never_influence():
    z = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    spoiled = z.detach().clone()
    spoiled[~mask.unsqueeze(1).expand_as(z)] = float("nan")
    torch.testing.assert_close(linear_softmax_pool(spoiled, mask), linear_softmax_pool(z, mask))
    torch.testing.assert_close(attention_pool(spoiled, a, mask), attention_pool(z, a, mask))
    (linear_softmax_pool(z, mask).sum() + attention_pool(z, a, mask).sum()).backward()
    hidden = ~mask.unsqueeze(1).expand_as(z)
    assert (z.grad[hidden] == 0).all() and (a.grad[hidden] == 0).all()


def test_gradcheck():
    z = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda x: linear_softmax_pool(x, mask), (z,))
    assert torch.autograd.gradcheck(lambda x, w: attention_pool(x, w, mask), (z, a))


def test_head_adds_an_attention_projection():
    head = EvidenceHead(8, 3, num_maps=2, pool=create_pool("attention"))
    features = torch.randn(2, 8, 5)
    out = head(features)
    attention = (
        torch.einsum("bdt,cd->bct", features, head.attend.weight) + head.attend.bias[:, None]
    )
    torch.testing.assert_close(out.scores, attention_pool(out.maps, attention))
    assert EvidenceHead(8, 3, pool=create_pool("linsoft")).attend is None


def test_bad_inputs_are_reported():
    z = torch.randn(1, 2, 3)
    z[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN in a valid region of batch index 0, class 1"):
        linear_softmax_pool(z)
    with pytest.raises(ValueError, match="NaN in a valid region of batch index 0, class 1"):
        attention_pool(z, torch.zeros_like(z))
    with pytest.raises(ValueError, match="attention must have the shape of scores"):
        attention_pool(z, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="mask has no valid region for batch index"):
        linear_softmax_pool(torch.randn(1, 2, 3), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs attention logits"):
        AttentionPool()(torch.randn(1, 2, 3))
