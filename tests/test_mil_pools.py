"""The MIL baselines (instance classifier + mean, attention MIL, DSMIL-style) against their plain
formulas written as loops over the instances of each bag."""

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


@given(bags())
def test_dsmil_is_critical_score_plus_similarity_attention(case):
    scores, queries, mask = case
    out = dsmil_pool(scores, queries, mask)
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            kept = [h for h in range(scores.shape[2]) if mask[b, h]]
            m = max(kept, key=lambda h: scores[b, c, h].item())
            sims = [queries[b, c, h].item() * queries[b, c, m].item() for h in kept]
            top = max(sims)
            e = [math.exp(s - top) for s in sims]
            second = sum(w * scores[b, c, h].item() for w, h in zip(e, kept, strict=True)) / sum(e)
            expected = (scores[b, c, m].item() + second) / 2
            assert out[b, c].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


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


@pytest.mark.parametrize("name", ["mimean", "abmil", "dsmil"])
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


def test_attention_pools_need_attention():
    with pytest.raises(ValueError, match="needs attention"):
        create_pool("abmil")(torch.randn(1, 1, 3))
