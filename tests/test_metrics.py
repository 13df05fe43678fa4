"""Average precision against scikit-learn, VOC07 against a naive loop, accumulation, ranks."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from negev.metrics import MeanAveragePrecision, average_precision, mean_average_precision


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(1, 40))
    c = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ties = draw(st.booleans())
    scores = rng.integers(0, 4, size=(n, c)).astype(float) if ties else rng.normal(size=(n, c))
    return scores, rng.random((n, c)) < draw(st.floats(0.05, 0.95))


@given(labelled_scores())
def test_matches_scikit_learn_ties_included(data):
    scores, targets = data
    ours = average_precision(torch.tensor(scores), torch.tensor(targets)).numpy()
    for c in range(scores.shape[1]):
        if not targets[:, c].any():
            assert np.isnan(ours[c])
        else:
            assert ours[c] == pytest.approx(average_precision_score(targets[:, c], scores[:, c]))
    present = targets.any(axis=0)
    if present.any():
        expected = np.mean(ours[present])
        assert mean_average_precision(torch.tensor(scores), torch.tensor(targets)).item() == (
            pytest.approx(expected)
        )


def naive_voc07(scores: np.ndarray, targets: np.ndarray) -> float:
    """PASCAL VOC 2007: mean over t in {0, .1, ..., 1} of the max precision at recall >= t,
    precision and recall taken at each distinct score threshold."""
    thresholds = sorted(set(scores.tolist()), reverse=True)
    points = []
    for t in thresholds:
        chosen = scores >= t
        tp = (chosen & targets).sum()
        points.append((tp / targets.sum(), tp / chosen.sum()))
    total = 0.0
    for k in range(11):
        reached = [p for r, p in points if r >= k / 10 - 1e-12]
        total += max(reached) if reached else 0.0
    return total / 11


@given(labelled_scores())
def test_voc07_matches_naive_loop(data):
    scores, targets = data
    ours = average_precision(torch.tensor(scores), torch.tensor(targets), "voc07").numpy()
    for c in range(scores.shape[1]):
        if targets[:, c].any():
            assert ours[c] == pytest.approx(naive_voc07(scores[:, c], targets[:, c]))


def test_stateful_accumulates_batches():
    rng = np.random.default_rng(0)
    scores, targets = (
        torch.tensor(rng.normal(size=(100, 5))),
        torch.tensor(rng.random((100, 5)) < 0.3),
    )
    metric = MeanAveragePrecision()
    for start in range(0, 100, 17):
        metric.update(scores[start : start + 17], targets[start : start + 17])
    assert metric.compute().item() == pytest.approx(mean_average_precision(scores, targets).item())
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        with pytest.raises(ValueError, match="before any update"):
            metric.compute()


def test_bad_inputs():
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(torch.randn(3), torch.ones(3), "11pt")
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        average_precision(torch.randn(3), torch.tensor([0, 1, 5]))
    with pytest.raises(ValueError, match="free of NaN, got nan at row 1"):
        average_precision(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]))
    metric = MeanAveragePrecision()
    metric.update(torch.randn(4, 2), torch.ones(4, 2))
    with pytest.raises(ValueError, match="earlier batches had 2"):
        metric.update(torch.randn(4, 3), torch.ones(4, 3))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, scores, targets, results) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        metric = MeanAveragePrecision()
        # ranks get different numbers of rows
        rows = slice(0, 23) if rank == 0 else slice(23, None)
        metric.update(scores[rows], targets[rows])
        results[rank] = metric.compute().item()
        results[f"per_class_{rank}"] = metric.compute_per_class().tolist()
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_agree_with_one_process():
    rng = np.random.default_rng(5)
    scores = torch.tensor(rng.normal(size=(60, 4)))
    targets = torch.tensor(rng.random((60, 4)) < 0.4)
    results = mp.Manager().dict()
    mp.spawn(_rank_main, args=(2, _free_port(), scores, targets, results), nprocs=2, join=True)
    expected = mean_average_precision(scores, targets).item()
    assert results[0] == pytest.approx(expected) and results[1] == pytest.approx(expected)
    per_class = average_precision(scores, targets).tolist()
    assert results["per_class_0"] == pytest.approx(per_class) == results["per_class_1"]
