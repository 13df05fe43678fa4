"""Weakly supervised localization and segmentation metrics from class maps.

Boxes are ``(class, x0, y0, x1, y1)`` in pixels with inclusive ends; points are ``(y, x)``;
class maps are brought to the image's pixel grid by :func:`upsample_maps` first.

* :func:`pointing_ap`: Oquab et al. (CVPR 2015), used by WILDCAT: per class, the maximum of the
  class map of every image is one detection scored by the class score; it is right when it falls
  in a box of that class grown by ``tolerance`` pixels (18 in the paper). AP over all images, so
  absent classes count as false positives, and a missed present class is never recalled.
* :func:`pointing_game`: Zhang et al. (ECCV 2016): over (image, present class) pairs, the share
  whose maximum falls within ``tolerance`` pixels (15 in the paper) of a box of the class.
* :func:`corloc`: share of (image, present class) pairs whose box, fitted to the connected part
  of the map above ``threshold`` x its maximum around the maximum, has IoU >= 0.5 with a true box.
* :class:`SegmentationIoU`: label maps from the class maps (background under a threshold),
  optionally refined by a fully connected CRF (:mod:`negev_image.crf`), accumulated into a
  confusion matrix; mean IoU over the classes seen.

The WSOL protocol of Choe et al. (MaxBoxAcc, MaxBoxAccV2, PxAP) is in :mod:`negev_image.wsol`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from negev_image.crf import DenseCRF, dense_crf, map_unary

__all__ = [
    "SegmentationIoU",
    "corloc",
    "corloc_counts",
    "fit_box",
    "map_peaks",
    "pointing_ap",
    "pointing_game",
    "upsample_maps",
]

Box = tuple[int, int, int, int, int]


def upsample_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, h, w) class maps -> (C, H, W) on the image's pixel grid (bilinear, cell centres kept)."""
    return F.interpolate(maps[None].float(), size=size, mode="bilinear", align_corners=False)[0]


def map_peaks(maps: Tensor) -> np.ndarray:
    """(C, H, W) -> (C, 2) int ``(y, x)`` of each class map's maximum (the first one on ties)."""
    flat = maps.reshape(maps.shape[0], -1).argmax(dim=1)
    width = maps.shape[-1]
    return torch.stack([flat // width, flat % width], dim=1).numpy()


def _distance_to_box(point: Sequence[int], box: Box) -> float:
    """Euclidean distance in pixels from a (y, x) point to a box (0 inside)."""
    _, x0, y0, x1, y1 = box
    dy = max(y0 - point[0], 0, point[0] - y1)
    dx = max(x0 - point[1], 0, point[1] - x1)
    return float(np.hypot(dx, dy))


def _hits(point: Sequence[int], boxes: list[Box], c: int, tolerance: float, metric: str) -> bool:
    """Whether ``point`` localizes class ``c``: inside a box grown by ``tolerance`` on each side
    (``metric="grow"``, Oquab) or within ``tolerance`` Euclidean pixels of it (Zhang)."""
    for box in boxes:
        if box[0] != c:
            continue
        if metric == "grow":
            _, x0, y0, x1, y1 = box
            inside_y = y0 - tolerance <= point[0] <= y1 + tolerance
            inside_x = x0 - tolerance <= point[1] <= x1 + tolerance
            if inside_y and inside_x:
                return True
        elif _distance_to_box(point, box) <= tolerance:
            return True
    return False


def pointing_ap(
    scores: np.ndarray,
    peaks: Sequence[np.ndarray],
    boxes: Sequence[list[Box]],
    tolerance: float = 18.0,
) -> tuple[float, list[float]]:
    """Oquab's pointing AP.

    Args:
        scores: (N, C) class scores (the detections' confidence). peaks: N arrays (C, 2) of
            ``(y, x)`` map maxima. boxes: N lists of the images' true boxes. tolerance: pixels.

    Returns:
        (mean over the classes present somewhere, per-class AP with NaN for a class never
        present). AP = sum over the correct detections of the precision at their rank, divided
        by the number of images holding the class.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num_classes = scores.shape[1]
    aps = []
    for c in range(num_classes):
        present = sum(any(b[0] == c for b in item) for item in boxes)
        if present == 0:
            aps.append(float("nan"))
            continue
        correct = np.array(
            [_hits(peaks[i][c], boxes[i], c, tolerance, "grow") for i in range(len(boxes))]
        )
        order = np.argsort(-scores[:, c], kind="stable")
        ranked = correct[order]
        precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
        aps.append(float(precision[ranked].sum() / present))
    finite = [a for a in aps if not np.isnan(a)]
    return (float(np.mean(finite)) if finite else float("nan")), aps


def pointing_game(
    peaks: Sequence[np.ndarray], boxes: Sequence[list[Box]], tolerance: float = 15.0
) -> float:
    """Zhang's pointing game accuracy over the (image, present class) pairs (NaN if none)."""
    hits = total = 0
    for item_peaks, item_boxes in zip(peaks, boxes, strict=True):
        for c in sorted({b[0] for b in item_boxes}):
            hits += _hits(item_peaks[c], item_boxes, c, tolerance, "distance")
            total += 1
    return hits / total if total else float("nan")


def fit_box(class_map: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of the connected region around the maximum of an (H, W) map
    where ``map >= threshold * max`` (``min + threshold * (max - min)`` when no value is
    positive): negative evidence and the background around 0 stay out of the box."""
    low, high = float(class_map.min()), float(class_map.max())
    above = class_map >= (threshold * high if high > 0 else low + threshold * (high - low))
    labels, _ = ndimage.label(above)
    peak = np.unravel_index(int(np.argmax(class_map)), class_map.shape)
    ys, xs = np.nonzero(labels == labels[peak])
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _iou(a: Sequence[int], b: Sequence[int]) -> float:
    """IoU of two inclusive pixel boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(w, 0) * max(h, 0)
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area - inter)


def corloc_counts(maps: Tensor, boxes: list[Box], threshold: float = 0.5) -> tuple[int, int]:
    """(correct, total) over the present classes of one image; maps: (C, H, W) upsampled."""
    hits = total = 0
    for c in sorted({b[0] for b in boxes}):
        fitted = fit_box(maps[c].numpy(), threshold)
        hits += any(b[0] == c and _iou(fitted, b[1:]) >= 0.5 for b in boxes)
        total += 1
    return hits, total


def corloc(maps: Sequence[Tensor], boxes: Sequence[list[Box]], threshold: float = 0.5) -> float:
    """CorLoc over the (image, present class) pairs (NaN if none).

    Args:
        maps: N upsampled class maps (C, H, W). boxes: N lists of true boxes.
    """
    counts = [corloc_counts(m, b, threshold) for m, b in zip(maps, boxes, strict=True)]
    hits, total = sum(h for h, _ in counts), sum(t for _, t in counts)
    return hits / total if total else float("nan")


class SegmentationIoU:
    """Mean IoU of label maps predicted from class maps, accumulated image by image.

    ``update(maps (C, H, W), probabilities (C,), truth (H, W) int)``: truth holds 0 for
    background, c + 1 for class c and 255 for pixels to ignore. The classes predicted present
    (probability >= 0.5, else the most probable one) compete: a pixel takes the class whose map,
    divided by its own maximum, is highest there, and background where that value is below
    ``threshold`` (or where no map is positive). ``compute()`` -> mean IoU over the classes
    (background included) that occur in the truth or the prediction.
    """

    def __init__(self, num_classes: int, threshold: float = 0.5):
        self.num_classes = num_classes
        self.threshold = threshold
        self.confusion = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)

    def predict(self, maps: Tensor, probabilities: Tensor) -> np.ndarray:
        """(H, W) int64 label map: 0 background, c + 1 for class c."""
        present = self.present(probabilities)
        chosen = maps[present].clamp(min=0)
        peak = chosen.reshape(len(present), -1).amax(dim=1).clamp(min=1e-12)
        relative = chosen / peak.view(-1, 1, 1)
        best, which = relative.max(dim=0)
        labels = present[which] + 1
        labels[best < self.threshold] = 0
        return labels.numpy()

    def present(self, probabilities: Tensor) -> Tensor:
        """(K,) indices of the classes predicted present (probability >= 0.5, else the most
        probable one)."""
        present = (probabilities >= 0.5).nonzero().flatten()
        return present if present.numel() else probabilities.argmax().view(1)

    def predict_crf(
        self, image: Tensor, maps: Tensor, probabilities: Tensor, params: DenseCRF | None = None
    ) -> np.ndarray:
        """(H, W) int64 label map of :meth:`predict`'s rule refined by the fully connected CRF
        of :mod:`negev_image.crf` on the (3, H, W) RGB ``image``."""
        params = params or DenseCRF()
        present = self.present(probabilities)
        unary = map_unary(maps, present, self.threshold, params.temperature)
        labels = dense_crf(image, unary, params).argmax(0)
        return torch.cat([torch.zeros(1, dtype=torch.long), present + 1])[labels].numpy()

    def update(self, maps: Tensor, probabilities: Tensor, truth: np.ndarray) -> None:
        self.update_labels(self.predict(maps, probabilities), truth)

    def update_labels(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        """Accumulate an (H, W) predicted label map against the truth."""
        keep = truth != 255
        size = self.num_classes + 1
        pairs = truth[keep].astype(np.int64) * size + predicted[keep]
        self.confusion += np.bincount(pairs, minlength=size * size).reshape(size, size)

    def compute(self) -> float:
        inter = np.diag(self.confusion)
        union = self.confusion.sum(0) + self.confusion.sum(1) - inter
        seen = union > 0
        return float((inter[seen] / union[seen]).mean()) if seen.any() else float("nan")
