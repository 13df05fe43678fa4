"""``row_count_norm`` against the plain formula: count each item's valid rows in a dict."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from negev.nn.functional import row_count_norm


@st.composite
def items(draw):
    batch, regions, rows = draw(st.integers(1, 4)), draw(st.integers(0, 9)), draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    ids = torch.randint(0, rows, (batch, regions), generator=g)
    mask = torch.rand(batch, regions, generator=g) < 0.7 if draw(st.booleans()) else None
    weights = torch.rand(rows, generator=g, dtype=torch.float64) * 3
    weights[torch.rand(rows, generator=g) < 0.3] = 0.0  # rows outside the vocabulary
    return ids, mask, weights


@given(items())
def test_row_count_norm_matches_counting_in_a_dict(case):
    rows, mask, weights = case
    got = row_count_norm(rows, mask, weights)
    for b in range(rows.shape[0]):
        counts: dict[int, int] = {}
        for r in range(rows.shape[1]):
            if mask is None or mask[b, r]:
                counts[int(rows[b, r])] = counts.get(int(rows[b, r]), 0) + 1
        expected = math.sqrt(sum((n * float(weights[i])) ** 2 for i, n in counts.items()))
        assert got[b].item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_row_count_norm_takes_any_region_shape_and_keeps_the_weights_dtype():
    rows = torch.tensor([[[0, 1], [1, 1]]])  # (B, 2, 2) regions
    weights = torch.tensor([2.0, 1.0], dtype=torch.float32)
    got = row_count_norm(rows, None, weights)
    assert got.dtype == torch.float32 and got.shape == (1,)
    assert got.item() == pytest.approx(math.sqrt(2.0**2 + 3.0**2))


def test_row_count_norm_counts_in_float32_for_half_weights():
    """1000 regions of one row: the count squared overflows float16, not the result."""
    rows = torch.zeros(1, 1000, dtype=torch.long)
    got = row_count_norm(rows, None, torch.ones(1, dtype=torch.float16))
    assert got.dtype == torch.float16 and got.item() == 1000.0
