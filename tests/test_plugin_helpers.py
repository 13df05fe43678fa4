"""Helpers shared by plugins, against independent references (torch's unfold, numpy,
scikit-learn, plain loops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from negev.metrics.regions import pointing_accuracy, region_auprc
from negev.plugins.normalize import ChannelStats
from negev.plugins.sequence import span_windows, window_count, window_mask


@given(st.integers(1, 60), st.integers(1, 12), st.integers(1, 12))
def test_window_count_is_what_unfold_and_conv1d_give(length, width, stride):
    padded = max(length, width)  # a sequence shorter than a window is padded to one
    expected = torch.zeros(padded).unfold(0, width, stride).shape[0]
    assert window_count(length, width, stride) == expected
    conv = torch.nn.Conv1d(1, 1, width, stride)
    assert conv(torch.zeros(1, 1, padded)).shape[-1] == expected


@given(st.lists(st.integers(1, 50), min_size=1, max_size=5), st.integers(1, 8), st.integers(1, 8))
def test_window_mask_marks_the_windows_inside_each_sequence(lengths, width, stride):
    mask = window_mask(torch.tensor(lengths), width, stride)
    total = max(window_count(n, width, stride) for n in lengths)
    assert mask.shape == (len(lengths), total) and mask.dtype == torch.bool
    for row, n in enumerate(lengths):
        for w in range(total):  # real: starts inside the sequence and ends inside it (or first)
            inside = w * stride + width <= n or w == 0
            assert bool(mask[row, w]) == inside


@given(st.integers(1, 60), st.integers(1, 10), st.integers(1, 10), st.data())
def test_span_windows_are_those_sharing_a_sample_with_the_span(length, width, stride, data):
    start = data.draw(st.integers(0, length - 1))
    end = data.draw(st.integers(start + 1, length))
    span = set(range(start, end))
    expected = [
        w
        for w in range(window_count(length, width, stride))
        if span & set(range(w * stride, w * stride + width))
    ]
    assert span_windows(start, end, width, stride, length) == expected


def test_channel_stats_match_numpy_whatever_the_chunks():
    generator = torch.Generator().manual_seed(0)
    signals = [torch.randn(3, n, generator=generator) * 4 + 7 for n in (5, 11, 2)]
    signals[0][2] = 1.0  # a constant channel in one chunk only: not constant overall
    stats = ChannelStats.fit(signals)
    joined = torch.cat(signals, dim=1).double().numpy()
    np.testing.assert_allclose(stats.mean, joined.mean(1), rtol=1e-12)
    np.testing.assert_allclose(stats.std, joined.std(1), rtol=1e-10)
    # channel-last tensors, another chunking: the same statistics
    rows = torch.cat(signals, dim=1).T
    other = ChannelStats.fit([rows[:4], rows[4:]], channel_dim=-1)
    np.testing.assert_allclose(other.mean, stats.mean, rtol=1e-12)
    standard = stats.apply(torch.cat(signals, dim=1))
    np.testing.assert_allclose(standard.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(standard.std(1, unbiased=False), 1, atol=1e-5)
    assert ChannelStats.from_dict(stats.to_dict()) == stats
    constant = ChannelStats.fit([torch.ones(2, 4)])
    assert constant.std == (1.0, 1.0)  # no division by zero
    with pytest.raises(ValueError, match="no value"):
        ChannelStats.fit([])


@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(0, 2**31 - 1))
def test_region_auprc_is_sklearns_ap_of_all_regions_and_pointing_a_loop(sizes, seed):
    generator = torch.Generator().manual_seed(seed)
    scores = [torch.randint(0, 4, (n,), generator=generator).float() for n in sizes]  # ties
    truth = [torch.rand(n, generator=generator) < 0.4 for n in sizes]
    labels = torch.cat(truth).numpy()
    if labels.any():
        expected = average_precision_score(labels, torch.cat(scores).numpy())
        assert region_auprc(scores, truth) == pytest.approx(expected)
        hits = [
            bool(t[int(np.argmax(s.numpy()))])
            for s, t in zip(scores, truth, strict=True)
            if t.any()
        ]
        assert pointing_accuracy(scores, truth) == pytest.approx(sum(hits) / len(hits))
    else:
        assert np.isnan(region_auprc(scores, truth)) and np.isnan(pointing_accuracy(scores, truth))
