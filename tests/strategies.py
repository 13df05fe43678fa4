"""Hypothesis strategies for region-score tensors."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


@st.composite
def region_scores(draw, *, ties: bool = True, max_regions: int = 12, with_mask: bool = True):
    """Draw (scores (B, C, *regions) float64, mask (B, *regions) bool or None).

    With ``ties`` the values may come from a small set of integers, so that equal scores occur.
    Every sample of a mask has at least one valid region.
    """
    batch = draw(st.integers(1, 3))
    classes = draw(st.integers(1, 3))
    region_shape = draw(
        st.one_of(
            st.tuples(st.integers(1, max_regions)),
            st.tuples(st.integers(1, 4), st.integers(1, 3)),
        )
    )
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, classes, *region_shape)
    if ties and draw(st.booleans()):
        scores = torch.randint(-3, 4, shape, generator=gen).double()
    else:
        scores = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    mask = None
    if with_mask and draw(st.booleans()):
        mask = torch.rand((batch, *region_shape), generator=gen) < 0.6
        flat = mask.reshape(batch, -1)
        first = torch.randint(0, flat.shape[1], (batch,), generator=gen)
        flat[torch.arange(batch), first] = True
    return scores, mask


counts = st.one_of(st.integers(1, 15), st.floats(0.01, 0.99))
