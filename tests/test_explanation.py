"""Explanation.top_regions against a naive ranking of distinct names."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from negev.engine.explanation import Explanation
from negev.plugins import Example


def _explanation(values: list[float], names: list[str | None] | None) -> Explanation:
    maps = torch.tensor([values, [-v for v in values]], dtype=torch.float64)
    return Explanation(Example("x", None, ()), ["a", "b"], maps.sum(1), maps, None, names, [])


def _naive(values: list[float], names: list[str | None] | None, k: int, high: bool):
    """Each distinct name's strongest value (max for, min against), the k strongest names."""
    names = names if names is not None else [str(i) for i in range(len(values))]
    best: dict[str, float] = {}
    for name, value in zip(names, values, strict=True):
        if name is not None:
            best[name] = (
                max(best.get(name, value), value) if high else min(best.get(name, value), value)
            )
    return sorted(best.values(), reverse=high)[:k]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 3), st.sampled_from(["good", "bad", "not good", "the", None])),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 6),
    st.booleans(),
)
def test_top_regions_lists_each_name_once_with_its_strongest_value(pairs, k, named):
    values = [float(v) for v, _ in pairs]
    names = [n for _, n in pairs] if named else None
    if names is not None and all(n is None for n in names):
        names[0] = "only"
    high, low = _explanation(values, names).top_regions(0, k)
    for found, strongest in ((high, True), (low, False)):
        assert len({name for name, _ in found}) == len(found)
        assert [v for _, v in found] == _naive(values, names, k, strongest)
    # class 1's map is class 0's negated: its strongest for are class 0's strongest against
    high1, low1 = _explanation(values, names).top_regions(1, k)
    assert [v for _, v in high1] == [-v for _, v in low]


def test_a_repeated_word_is_listed_once():
    values = [0.5, 0.9, 0.5, 0.9, -0.2]
    names = ["not", "good", "not", "good", "film"]
    high, low = _explanation(values, names).top_regions(0, 2)
    assert high == [("good", 0.9), ("not", 0.5)]
    assert low == [("film", -0.2), ("not", 0.5)]


def test_top_zero_lists_nothing_and_a_negative_count_is_refused():
    explanation = _explanation([0.5, -0.5], ["good", "bad"])
    assert explanation.top_regions(0, 0) == ([], [])
    with pytest.raises(ValueError, match="k must be >= 0"):
        explanation.top_regions(0, -1)
