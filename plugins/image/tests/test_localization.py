"""Localization and segmentation metrics against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, confusion_matrix

from negev_image.localization import (
    SegmentationIoU,
    corloc,
    fit_box,
    map_peaks,
    pointing_ap,
    pointing_game,
    upsample_maps,
)


def blob(size: int, y: int, x: int, width: float = 2.0) -> torch.Tensor:
    grid_y, grid_x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.exp(-((grid_y - y) ** 2 + (grid_x - x) ** 2) / (2 * width**2))


def naive_pointing_ap(scores, hits, present):
    """VOC-style AP with one detection per image, written as a plain loop."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp, total = 0, 0.0
    for rank, i in enumerate(order, start=1):
        if hits[i]:
            tp += 1
            total += tp / rank
    return total / present


def test_pointing_ap_matches_sklearn_when_every_present_class_is_found():
    rng = np.random.default_rng(0)
    boxes = [[(0, 10, 10, 20, 20)] if rng.random() < 0.4 else [] for _ in range(40)]
    boxes[0] = [(0, 10, 10, 20, 20)]
    scores = rng.normal(size=(40, 1))
    peaks = [np.array([[15, 15]]) if b else np.array([[50, 50]]) for b in boxes]
    present = np.array([bool(b) for b in boxes])
    ap, per_class = pointing_ap(scores, peaks, boxes, tolerance=0)
    assert ap == pytest.approx(average_precision_score(present, scores[:, 0]))
    assert per_class == [ap]


def test_pointing_ap_counts_a_misplaced_peak_as_a_miss_and_grows_boxes_by_the_tolerance():
    boxes = [[(0, 10, 10, 20, 20)], [(0, 30, 30, 40, 40)], [], [(1, 0, 0, 5, 5)]]
    scores = np.array([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.5, 1.0]])
    peaks = [np.array([[15, 15], [0, 0]]), np.array([[29, 45], [0, 0]]), np.array([[0, 0]] * 2),
             np.array([[0, 0], [2, 2]])]  # fmt: skip
    # class 0: image 1's peak is 5 px right of its box: a miss at tolerance 4, a hit at 5
    strict, per_class = pointing_ap(scores, peaks, boxes, tolerance=4)
    assert per_class[0] == pytest.approx(naive_pointing_ap(scores[:, 0], [1, 0, 0, 0], 2))
    assert per_class[1] == 1.0 and strict == pytest.approx((per_class[0] + 1.0) / 2)
    _, loose = pointing_ap(scores, peaks, boxes, tolerance=5)
    assert loose[0] == 1.0


def test_pointing_game_uses_distance_to_the_box_over_present_classes():
    boxes = [[(0, 10, 10, 20, 20), (1, 40, 40, 50, 50)], [(0, 0, 0, 4, 4)]]
    peaks = [np.array([[24, 23], [60, 60]]), np.array([[2, 2], [30, 30]])]
    # image 0 class 0: 5 px away (3, 4); class 1: far; image 1 class 0: inside
    assert pointing_game(peaks, boxes, tolerance=5) == pytest.approx(2 / 3)
    assert pointing_game(peaks, boxes, tolerance=4.9) == pytest.approx(1 / 3)


def test_peaks_and_upsampling_keep_positions():
    maps = torch.stack([blob(16, 3, 12), blob(16, 10, 5)])
    assert map_peaks(maps).tolist() == [[3, 12], [10, 5]]
    up = upsample_maps(maps, (64, 64))
    assert up.shape == (2, 64, 64)
    assert np.abs(map_peaks(up) - np.array([[13.5, 49.5], [41.5, 21.5]])).max() <= 1.5


def test_fit_box_takes_the_component_around_the_peak():
    image = np.zeros((30, 30))
    image[5:10, 8:20] = 1.0
    image[20:25, 20:25] = 0.8  # another component, above threshold but not connected
    assert fit_box(image, 0.5) == (8, 5, 19, 9)


def test_corloc():
    maps = [torch.stack([blob(40, 10, 10, 5.0), blob(40, 30, 30, 5.0)])]
    right = [[(0, 5, 5, 15, 15), (1, 25, 25, 35, 35)]]
    wrong = [[(0, 5, 5, 15, 15), (1, 0, 25, 8, 35)]]
    assert corloc(maps, right) == 1.0
    assert corloc(maps, wrong) == 0.5


def test_segmentation_iou_matches_sklearn_confusion():
    gen = torch.Generator().manual_seed(0)
    metric = SegmentationIoU(num_classes=3, threshold=0.4)
    truths, predictions = [], []
    for _ in range(4):
        maps = torch.randn(3, 20, 20, generator=gen)
        probs = torch.rand(3, generator=gen)
        truth = torch.randint(0, 4, (20, 20), generator=gen).numpy()
        truth[0, :5] = 255
        metric.update(maps, probs, truth)
        predicted = metric.predict(maps, probs)
        keep = truth != 255
        truths.append(truth[keep])
        predictions.append(predicted[keep])
    matrix = confusion_matrix(np.concatenate(truths), np.concatenate(predictions), labels=range(4))
    inter = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - inter
    assert metric.compute() == pytest.approx(np.mean(inter[union > 0] / union[union > 0]))


def test_segmentation_prediction_rules():
    maps = torch.zeros(2, 4, 4)
    maps[0, :2] = 2.0
    maps[0, 2] = 0.5  # a quarter of class 0's maximum: background at threshold 0.5
    maps[1, :, 3] = 1.0
    labels = SegmentationIoU(2, 0.5).predict(maps, torch.tensor([0.9, 0.2]))
    assert labels[:2].tolist() == [[1, 1, 1, 1]] * 2 and (labels[2:] == 0).all()
    both = SegmentationIoU(2, 0.5).predict(maps, torch.tensor([0.9, 0.8]))
    assert both[3, 3] == 2 and both[0, 0] == 1
    # no class predicted present: the most probable one is used
    none = SegmentationIoU(2, 0.5).predict(maps, torch.tensor([0.1, 0.3]))
    assert set(np.unique(none)) == {0, 2}
