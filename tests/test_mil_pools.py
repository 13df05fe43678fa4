"""The MIL baselines (instance classifier + mean, attention MIL, gated attention MIL, DSMIL) against
their plain formulas written as loops over the instances of each bag."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from negev.nn import EvidenceHead, create_pool
from negev.nn.functional import attention_mil_pool, dsmil_pool, instance_mean_pool


@st.composite
def bags(draw):
    batch = draw(st.integers(1, 3))
    classes = draw(st.integers(1, 3))
    n = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, classes, n, generator=g, dtype=torch.float64) * 3
    attention = torch.randn(batch, classes, n, generator=g, dtype=torch.float64) * 2
    lengths = torch.randint(1, n + 1, (batch,), generator=g)
    mask = torch.arange(n) < lengths[:, None]
    return scores, attention, mask


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p) - math.log1p(-p)


@given(bags())
def test_instance_mean_is_the_mean_probability(case):
    scores, _, mask = case
    out = instance_mean_pool(scores, mask)
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            kept = [scores[b, c, h].item() for h in range(scores.shape[2]) if mask[b, h]]
            mean = sum(1 / (1 + math.exp(-z)) for z in kept) / len(kept)
            assert out[b, c].item() == pytest.approx(_logit(mean), rel=1e-6, abs=1e-6)


@given(bags())
def test_attention_mil_is_the_weighted_mean(case):
    scores, attention, mask = case
    out = attention_mil_pool(scores, attention, mask)
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            kept = [h for h in range(scores.shape[2]) if mask[b, h]]
            e = [math.exp(attention[b, c, h].item()) for h in kept]
            expected = sum(w * scores[b, c, h].item() for w, h in zip(e, kept, strict=True)) / sum(
                e
            )
            assert out[b, c].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@st.composite
def dsmil_bags(draw):
    scores, bag_scores, mask = draw(bags())
    dim = draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    queries = torch.randn(scores.shape[0], dim, scores.shape[2], generator=g, dtype=torch.float64)
    return scores, queries, bag_scores, mask


def _dsmil_loop(scores, queries, bag_scores, mask, b, c):
    """DSMIL's eq. 1-5 for bag b, class c, one instance at a time."""
    kept = [h for h in range(scores.shape[-1]) if mask[b, h]]
    m = max(kept, key=lambda h: scores[b, c, h].item())
    dim = queries.shape[1]
    sims = [
        sum(queries[b, e, h].item() * queries[b, e, m].item() for e in range(dim)) / math.sqrt(dim)
        for h in kept
    ]
    e = [math.exp(s - max(sims)) for s in sims]
    second = sum(w * bag_scores[b, c, h].item() for w, h in zip(e, kept, strict=True)) / sum(e)
    return (scores[b, c, m].item() + second) / 2


@given(dsmil_bags())
def test_dsmil_is_critical_score_plus_query_attention_stream(case):
    scores, queries, bag_scores, mask = case
    out = dsmil_pool(scores, queries, bag_scores, mask)
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            expected = _dsmil_loop(scores, queries, bag_scores, mask, b, c)
            assert out[b, c].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_dsmil_head_has_its_own_queries_and_bag_classifier():
    """In an EvidenceHead, DSMIL's queries q_h = W_q x_h and bag-stream logits s_h = W_b x_h + b
    come from the attention module; the max stream is the head's instance classifier."""
    torch.manual_seed(0)
    head = EvidenceHead(5, 2, pool=create_pool("dsmil", query_dim=3)).double()
    x = torch.randn(1, 5, 9, dtype=torch.float64)
    mask = (torch.arange(9) < 7)[None]
    out = head(x, mask).scores
    w, bias = head.attend.weight, head.attend.bias
    queries = torch.einsum("ed,bdn->ben", w[:3], x) + bias[:3, None]
    bag_scores = torch.einsum("cd,bdn->bcn", w[3:], x) + bias[3:, None]
    scores = torch.einsum("cd,bdn->bcn", head.proj.weight, x) + head.proj.bias[:, None]
    for c in range(2):
        expected = _dsmil_loop(scores, queries, bag_scores, mask, 0, c)
        assert out[0, c].item() == pytest.approx(expected, rel=1e-9)


def test_gated_abmil_head_is_ilse_eq_9():
    """y = <w_cls, sum_h softmax(a)_h x_h> + b_cls, a_h = w^T (tanh(V x_h) * sigmoid(U x_h)),
    written out instance by instance and unit by unit."""
    torch.manual_seed(0)
    head = EvidenceHead(4, 1, pool=create_pool("gabmil", attention_dim=3)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    out = head(x.T[None]).scores[0, 0].item()
    gate = head.attend

    def unit(layer, h, j):
        return (
            sum(layer.weight[j, d].item() * x[h, d].item() for d in range(4)) + layer.bias[j].item()
        )

    a = [
        sum(
            gate.w.weight[0, j].item()
            * math.tanh(unit(gate.V, h, j))
            / (1 + math.exp(-unit(gate.U, h, j)))
            for j in range(3)
        )
        for h in range(6)
    ]
    e = [math.exp(v) for v in a]
    embedding = [sum(e[h] * x[h, d].item() for h in range(6)) / sum(e) for d in range(4)]
    expected = sum(head.proj.weight[0, d].item() * embedding[d] for d in range(4))
    assert out == pytest.approx(expected + head.proj.bias[0].item(), rel=1e-9)


@pytest.mark.parametrize(("name", "size"), [("gabmil", "attention_dim"), ("dsmil", "query_dim")])
def test_attention_module_trains_with_the_head(name, size):
    head = EvidenceHead(4, 2, pool=create_pool(name, **{size: 5}))
    attention = dict(head.attend.named_parameters())
    assert attention and all(
        p is dict(head.named_parameters())[f"attend.{k}"] for k, p in attention.items()
    )
    head(torch.randn(2, 4, 6)).scores.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.values())
    with pytest.raises(ValueError, match=f"{size} must be an int >= 1, got 0"):
        create_pool(name, **{size: 0})


def test_dsmil_refuses_attention_of_the_wrong_shape():
    scores = torch.randn(1, 2, 3)
    with pytest.raises(ValueError, match=r"shape \(B, query_dim \+ C, \*regions\) = \(1, 6, 3\)"):
        create_pool("dsmil", query_dim=4)(scores, attention=torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="queries must have shape"):
        dsmil_pool(scores, torch.randn(1, 4, 2), scores)
    with pytest.raises(ValueError, match="bag_scores must have the shape of scores"):
        dsmil_pool(scores, torch.randn(1, 4, 3), scores[:, :1])


def test_abmil_head_is_the_classifier_of_the_attention_embedding():
    """In an EvidenceHead, attention MIL is Ilse et al.'s model with a linear classifier and a
    linear attention: y = <w, sum_h softmax(a)_h x_h> + b, a_h = <u, x_h> + c."""
    torch.manual_seed(0)
    head = EvidenceHead(5, 1, pool=create_pool("abmil")).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    scores = head(x.T[None]).scores[0, 0]
    a = x @ head.attend.weight[0] + head.attend.bias[0]
    embedding = (torch.softmax(a, 0)[:, None] * x).sum(0)
    expected = embedding @ head.proj.weight[0] + head.proj.bias[0]
    assert torch.allclose(scores, expected)


@pytest.mark.parametrize("name", ["mimean", "abmil", "gabmil", "dsmil"])
def test_mil_pools_gradcheck_and_mask(name):
    torch.manual_seed(1)
    head = EvidenceHead(4, 2, pool=create_pool(name)).double()
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    assert torch.autograd.gradcheck(lambda f: head(f, mask).scores, (x,))
    # padded instances change nothing
    noisy = x.detach().clone()
    noisy[1, :, 3:] = 1e3
    assert torch.allclose(head(noisy, mask).scores, head(x.detach(), mask).scores)


@pytest.mark.parametrize("name", ["abmil", "gabmil", "dsmil"])
def test_attention_pools_need_attention(name):
    with pytest.raises(ValueError, match="needs attention"):
        create_pool(name)(torch.randn(1, 1, 3))
