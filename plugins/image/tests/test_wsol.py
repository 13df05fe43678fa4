"""The WSOL protocol (MaxBoxAcc, MaxBoxAccV2, PxAP, its files) and the dense CRF, against values
worked out by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from negev_image.crf import DenseCRF, dense_crf, map_unary
from negev_image.localization import SegmentationIoU
from negev_image.wsol import (
    BoxAccuracy,
    PixelAP,
    box_ious,
    boxes_from_scoremap,
    evaluate_layout,
    normalize_scoremap,
    read_metadata,
    read_scoremaps,
    scoremap,
    write_layout,
)


def two_blobs(small: float = 1.0, large: float = 0.6) -> np.ndarray:
    """20 x 20: a 4 x 4 square at value ``small`` (rows/cols 2-5) and an 8 x 8 one at ``large``
    (rows/cols 10-17)."""
    score = np.zeros((20, 20))
    score[2:6, 2:6] = small
    score[10:18, 10:18] = large
    return score


def test_boxes_of_two_contours_use_the_protocols_end_convention():
    # uint8(0.6 * 255) = 153: both contours up to int(t * 255) < 153, t < 0.6; then the small one
    found = boxes_from_scoremap(two_blobs(), [0.0, 0.59, 0.6, 0.99], multi_contour=True)
    assert sorted(map(tuple, found[0])) == [(2, 2, 6, 6), (10, 10, 18, 18)]  # x + w: one past
    assert sorted(map(tuple, found[1])) == [(2, 2, 6, 6), (10, 10, 18, 18)]
    assert [tuple(b) for b in found[2]] == [(2, 2, 6, 6)]
    largest = boxes_from_scoremap(two_blobs(), [0.0], multi_contour=False)[0]
    assert [tuple(b) for b in largest] == [(10, 10, 18, 18)]
    edge = np.zeros((10, 10))
    edge[5:, 5:] = 1.0  # x + w = 10 is clipped to W - 1
    assert [tuple(b) for b in boxes_from_scoremap(edge, [0.5])[0]] == [(5, 5, 9, 9)]
    assert [tuple(b) for b in boxes_from_scoremap(np.zeros((4, 4)), [0.5])[0]] == [(0, 0, 0, 0)]


def test_box_iou_counts_inclusive_pixels():
    assert box_ious(np.array([[2, 2, 6, 6]]), np.array([[2, 2, 5, 5]]))[0, 0] == 16 / 25
    assert box_ious(np.array([[0, 0, 0, 0]]), np.array([[5, 5, 6, 6]]))[0, 0] == 0


def test_max_box_acc_of_a_two_contour_map_whose_best_box_is_known():
    # The object is the small square (2..5): its contour box (2, 2, 6, 6) has IoU 16/25 = 0.64.
    # MaxBoxAcc (largest contour) picks the big square until t >= 0.6, then the small one: right
    # at IoU 0.5 for the 40 thresholds 0.60..0.99. MaxBoxAccV2 (every contour) is right at every
    # threshold for IoU 0.3 and 0.5, never at 0.7: mean 2/3.
    truth = np.array([[2, 2, 5, 5]])
    v1 = BoxAccuracy(multi_contour=False, iou_thresholds=(0.5,))
    v2 = BoxAccuracy()
    v1.update(two_blobs(), truth)
    v2.update(two_blobs(), truth)
    assert v1.compute() == [1.0]
    assert v1.accuracy_curves()[0].sum() == 40
    assert v2.compute() == [1.0, 1.0, 0.0]
    # both squares at one value: the largest contour is always the wrong one
    same = two_blobs(small=1.0, large=1.0)
    v1, v2 = BoxAccuracy(multi_contour=False, iou_thresholds=(0.5,)), BoxAccuracy()
    v1.update(same, truth)
    v2.update(same, truth)
    assert v1.compute() == [0.0] and np.mean(v2.compute()) == pytest.approx(2 / 3)


def test_max_box_acc_takes_one_threshold_for_all_items():
    # item 1 is right only for t < 0.6 (big square), item 2 only for t >= 0.6 (small square):
    # no single threshold gets both, so the accuracy is 1/2, not 1
    acc = BoxAccuracy(multi_contour=False, iou_thresholds=(0.5,))
    acc.update(two_blobs(), np.array([[10, 10, 17, 17]]))
    acc.update(two_blobs(), np.array([[2, 2, 5, 5]]))
    assert acc.compute() == [0.5]


def test_pxap_of_a_map_and_mask_worked_by_hand():
    # scores 0.905 (object), 0.705 (bg), 0.305 (object), 0.105 (bg), one ignored pixel:
    # precision at each recall step: 1 at recall 1/2, 2/3 at recall 1 -> 1/2 + 1/3
    score = np.array([[0.905, 0.705, 0.305, 0.105, 0.995]])
    mask = np.array([[1, 0, 1, 0, 255]])
    pxap = PixelAP()
    pxap.update(score, mask)
    assert pxap.compute() == pytest.approx(1 / 2 + 1 / 3)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_pxap_is_average_precision_on_scores_inside_the_bins(seed):
    rng = np.random.default_rng(seed)
    score = (rng.integers(0, 100, size=(12, 12)) + 0.5) / 100  # bin midpoints: no edge ties
    mask = (rng.random((12, 12)) < 0.3).astype(np.uint8)
    mask[0, 0], mask[0, 1] = 1, 0
    mask[rng.random((12, 12)) < 0.1] = 255
    pxap = PixelAP()
    pxap.update(score[:6], mask[:6])  # accumulated over two items
    pxap.update(score[6:], mask[6:])
    keep = mask != 255
    expected = average_precision_score(mask[keep] == 1, score[keep])
    assert pxap.compute() == pytest.approx(expected)


def test_scoremaps_are_normalised_and_bad_maps_refused():
    assert normalize_scoremap(np.full((3, 3), 2.0)).max() == 0
    assert normalize_scoremap(np.array([[np.nan, 1.0]])).max() == 0
    up = scoremap(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), (8, 6))
    assert up.shape == (8, 6) and up.min() == 0 and up.max() == 1
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        PixelAP().update(np.full((2, 2), 1.5), np.ones((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        PixelAP().update(np.zeros((2, 2)), np.ones((3, 2)))


def test_layout_round_trip_gives_the_same_accuracy(tmp_path):
    # an image of 40 x 20 (w x h) whose map holds the object at its right half
    class_map = torch.zeros(10, 20)
    class_map[:, 10:] = 1.0
    items = [("cls/a.jpg", class_map, (40, 20), [(20, 0, 39, 19)])]
    assert write_layout(tmp_path / "maps", tmp_path / "meta", items) == 1
    ids, sizes, boxes = read_metadata(tmp_path / "meta")
    assert ids == ["cls/a.jpg"] and sizes == {"cls/a.jpg": (40, 20)}
    assert boxes == {"cls/a.jpg": [(20, 0, 39, 19)]}
    maps = read_scoremaps(tmp_path / "maps", ids)
    assert maps["cls/a.jpg"].shape == (224, 224) and (tmp_path / "maps/cls/a.jpg.npy").is_file()
    result = evaluate_layout(tmp_path / "maps", tmp_path / "meta")
    assert result["max_box_acc"] == 1.0 and result["max_box_acc_v2"] == 1.0
    (tmp_path / "meta/image_sizes.txt").write_text("cls/a.jpg,40\n")
    with pytest.raises(ValueError, match="image_sizes.txt:1"):
        read_metadata(tmp_path / "meta")
    with pytest.raises(ValueError, match="no score map"):
        read_scoremaps(tmp_path / "maps", ["missing.jpg"])


def test_crf_without_pairwise_terms_keeps_the_map_rule_and_smooths_with_them():
    torch.manual_seed(0)
    maps = torch.randn(3, 16, 16)
    probabilities = torch.tensor([0.9, 0.8, 0.1])
    seg = SegmentationIoU(3)
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    off = DenseCRF(appearance_weight=0.0, smoothness_weight=0.0)
    assert (
        seg.predict_crf(image, maps, probabilities, off) == seg.predict(maps, probabilities)
    ).all()
    # a noisy two-region map on a two-colour image: the CRF follows the colour edge
    image[:, :, 8:] = 255
    clean = torch.zeros(3, 16, 16)
    clean[0, :, 8:] = 1.0
    noisy = clean + 0.3 * torch.randn(3, 16, 16)
    truth = np.where(clean[0].numpy() > 0, 1, 0)
    plain = (seg.predict(noisy, probabilities) == truth).mean()
    strong = DenseCRF(appearance_weight=10.0, theta_alpha=2000.0, theta_beta=20.0, temperature=0.1)
    refined = (seg.predict_crf(image, noisy, probabilities, strong) == truth).mean()
    assert refined > plain and refined == 1.0


def test_crf_marginals_are_distributions_and_shapes_are_checked():
    unary = map_unary(torch.rand(2, 40, 40), torch.tensor([0, 1]), 0.5, 0.1)
    q = dense_crf(torch.rand(3, 40, 40) * 255, unary, DenseCRF(max_pixels=400))  # shrunk grid
    assert q.shape == (3, 40, 40)
    assert torch.allclose(q.sum(0), torch.ones(40, 40), atol=1e-5)
    with pytest.raises(ValueError, match="unary"):
        dense_crf(torch.rand(3, 8, 8), unary)


def test_image_plugin_reports_the_protocol_and_the_crf_on_the_demo():
    # maps that are the true masks: every pixel ranked right (PxAP 1), boxes of the digits
    from negev_image.plugin import ImagePlugin

    plugin = ImagePlugin()
    options = {"demo_train": 1, "demo_val": 1, "demo_test": 6, "crf": "true", "wsol_size": 0}
    config = {"plugin": options}
    splits = plugin.load_data(None, config)
    plugin.load_state(plugin.fit_state(splits, config), config)
    maps, scores = [], []
    for example in splits.test:
        mask = torch.as_tensor(np.asarray(example.truth["mask"]).astype(np.int64))
        maps.append(torch.stack([(mask == c + 1).float() for c in range(len(splits.classes))]))
        scores.append([5.0 if c in example.labels else -5.0 for c in range(len(splits.classes))])
    metrics = plugin.evidence_metrics(splits.test, maps, splits.classes, torch.tensor(scores))
    assert metrics["pxap"] == pytest.approx(1.0)
    assert metrics["max_box_acc_v2"] > 0.5 and 0 <= metrics["max_box_acc"] <= 1
    assert metrics["miou"] == pytest.approx(1.0) and 0.5 < metrics["miou_crf"] <= 1.0


def test_image_plugin_scores_what_the_protocols_files_score(tmp_path):
    # the plugin (maps, boxes at 224 x 224) and its maps written in the protocol's layout give
    # the same MaxBoxAcc / MaxBoxAccV2
    from negev_image.plugin import ImagePlugin

    plugin = ImagePlugin()
    splits = plugin.load_data(None, {"plugin": {"demo_train": 1, "demo_val": 1, "demo_test": 8}})
    torch.manual_seed(0)
    maps = [torch.randn(len(splits.classes), 16, 16) for _ in splits.test]
    metrics = plugin.evidence_metrics(splits.test, maps, splits.classes)
    items = [
        (f"{c}/{i}", maps[i][c], (64, 64), [b[1:] for b in e.truth["boxes"] if b[0] == c])
        for i, e in enumerate(splits.test)
        for c in sorted({b[0] for b in e.truth["boxes"]})
    ]
    write_layout(tmp_path / "maps", tmp_path / "meta", items)
    layout = evaluate_layout(tmp_path / "maps", tmp_path / "meta")
    assert metrics["max_box_acc"] == pytest.approx(layout["max_box_acc"])
    assert metrics["max_box_acc_v2"] == pytest.approx(layout["max_box_acc_v2"])
