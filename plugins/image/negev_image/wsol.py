"""The weakly supervised object localization protocol of Choe et al. (CVPR 2020, "Evaluating
Weakly Supervised Object Localization Methods Right"; code: clovaai/wsolevaluation,
``evaluation.py``), written to give the same numbers as that code.

A score map (H, W) is normalised to [0, 1] (:func:`normalize_scoremap`: minus its minimum, over
its new maximum; a constant or NaN map becomes zeros) after bicubic upsampling to the image size
(:func:`scoremap`). Thresholds sweep ``np.arange(0, 1, interval)`` (``interval`` 0.01, the
command-line default of ``evaluation.py``; its training config uses 0.001).

* **MaxBoxAcc** (:class:`BoxAccuracy`, ``multi_contour=False``, IoU 0.5): at each threshold, the
  box around the largest contour of ``uint8(255 map) > int(t * max)`` (OpenCV contours); an item
  is right when that box has IoU >= 0.5 with one of its true boxes; the best threshold's accuracy.
* **MaxBoxAccV2** (``multi_contour=True``): boxes around *every* contour, the best box of a
  threshold counts, and the accuracy is averaged over IoU 0.3, 0.5 and 0.7 (each at its own best
  threshold).
* **PxAP** (:class:`PixelAP`): the area under the pixel precision-recall curve of the map against
  the mask (ignored pixels left out), from histograms of the pixel scores over the same
  thresholds: ``sum_t precision(t) * (recall(t) - recall(t_prev))``.

Boxes are ``(x0, y0, x1, y1)`` pixel indices, ends included (IoU counts ``x1 - x0 + 1``); values
are fractions (the papers print percents). Every threshold is chosen on the evaluated split
itself, as the protocol defines; the method's other hyperparameters must be chosen on a held-out
split with full supervision (``train-fullsup``), never on test.

The protocol's files (:func:`write_layout`, :func:`read_scoremaps`, :func:`read_metadata`):
``<root>/<image_id>.npy`` float score maps, and a metadata folder with ``image_ids.txt``
(``<image_id>``), ``image_sizes.txt`` (``<image_id>,<w>,<h>``) and ``localization.txt``
(``<image_id>,<x0>,<y0>,<x1>,<y1>``, one line per box), which ``evaluation.py --scoremap_root ROOT
--metadata_root META --dataset_name CUB`` reads (its boxes are rescaled to 224 x 224, the size its
score maps must have: :func:`write_layout` writes them so). A trained run's maps:
``python -m negev_image.wsol --checkpoint RUN --out DIR [--split test]`` (:func:`export_run`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from torch import Tensor

__all__ = [
    "BoxAccuracy",
    "PixelAP",
    "RESIZE_LENGTH",
    "box_ious",
    "boxes_from_scoremap",
    "contour_boxes",
    "evaluate_layout",
    "export_run",
    "normalize_scoremap",
    "read_metadata",
    "read_scoremaps",
    "resize_box",
    "scoremap",
    "thresholds",
    "write_layout",
]

RESIZE_LENGTH = 224  # the side of the protocol's score maps and rescaled boxes
IOU_THRESHOLDS = (0.3, 0.5, 0.7)


def thresholds(interval: float = 0.01) -> np.ndarray:
    """The protocol's threshold sweep ``np.arange(0, 1, interval)``."""
    return np.arange(0, 1, interval)


def normalize_scoremap(cam: np.ndarray) -> np.ndarray:
    """(H, W) -> float64 in [0, 1]: ``(cam - min) / (max - min)``; zeros for a map that is
    constant or holds a NaN (``inference.py``'s ``normalize_scoremap``)."""
    cam = np.asarray(cam, dtype=np.float64)
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam = cam - cam.min()
    return cam / cam.max()


def scoremap(class_map: Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One class map (h, w) -> the protocol's score map (H, W) = ``size``: bicubic upsampling
    (``cv2.INTER_CUBIC``, as ``inference.py``), then :func:`normalize_scoremap`."""
    cam = class_map.detach().cpu().float().numpy() if isinstance(class_map, Tensor) else class_map
    height, width = size
    resized = cv2.resize(np.asarray(cam, dtype=np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)  # fmt: skip
    return normalize_scoremap(resized)


def _check(score: np.ndarray) -> None:
    if score.ndim != 2 or np.isnan(score).any() or score.min() < 0 or score.max() > 1:
        raise ValueError("a score map must be a 2-D array in [0, 1] without NaN")


def contour_boxes(
    score: np.ndarray, levels: Iterable[float]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per threshold, the (n, 4) int boxes ``(x0, y0, x1, y1)`` of every contour of
    ``uint8(255 score) > int(t * max)`` and the (1, 4) box of the largest one (by
    ``cv2.contourArea``, the first on ties); ``[[0, 0, 0, 0]]`` for both when there is none. Ends
    are ``x + w``, ``y + h`` clipped to ``W - 1``, ``H - 1``, as ``compute_bboxes_from_scoremaps``.
    """
    _check(score)
    height, width = score.shape
    image = (score * 255).astype(np.uint8)
    peak = int(image.max())
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for t in levels:
        level = int(t * peak)
        if level not in cache:
            _, binary = cv2.threshold(image, level, 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            if len(contours) == 0:
                none = np.zeros((1, 4), dtype=np.int64)
                cache[level] = (none, none)
            else:
                boxes = []
                for contour in contours:
                    x, y, w, h = cv2.boundingRect(contour)
                    boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
                areas = [cv2.contourArea(c) for c in contours]
                every = np.asarray(boxes, dtype=np.int64)
                largest = int(np.argmax(areas))  # first of the maxima, as max() in the reference
                cache[level] = (every, every[largest : largest + 1])
        out.append(cache[level])
    return out


def boxes_from_scoremap(
    score: np.ndarray, levels: Iterable[float], multi_contour: bool = True
) -> list[np.ndarray]:
    """Per threshold, the boxes of :func:`contour_boxes`: every contour's (``multi_contour``)
    or the largest one's."""
    return [every if multi_contour else largest for every, largest in contour_boxes(score, levels)]


def box_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) inclusive boxes -> (n, m) IoU (0 for a degenerate pair), as
    ``calculate_multiple_iou``."""
    a = np.asarray(a, dtype=np.float64)[:, None, :]
    b = np.asarray(b, dtype=np.float64)[None, :, :]
    inter = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter *= np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


class BoxAccuracy:
    """MaxBoxAcc / MaxBoxAccV2 accumulated item by item (``BoxEvaluator``).

    ``update(score (H, W) in [0, 1], boxes (m, 4))``; ``compute()`` -> the best-threshold box
    accuracy for each IoU threshold. MaxBoxAcc: ``BoxAccuracy(multi_contour=False,
    iou_thresholds=(0.5,))``; MaxBoxAccV2: the defaults, reported as the mean of ``compute()``.
    """

    def __init__(
        self,
        multi_contour: bool = True,
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
        interval: float = 0.01,
    ):
        self.multi_contour = multi_contour
        self.iou_thresholds = tuple(iou_thresholds)
        self.levels = thresholds(interval)
        self.correct = np.zeros((len(self.iou_thresholds), len(self.levels)))
        self.count = 0

    def update(
        self,
        score: np.ndarray,
        boxes: np.ndarray,
        found: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Add one item: its score map, its true (m, 4) boxes, and optionally the
        :func:`contour_boxes` of the map at ``thresholds(interval)`` (to share them between
        MaxBoxAcc and MaxBoxAccV2)."""
        truth = np.asarray(boxes).reshape(-1, 4)
        found = found if found is not None else contour_boxes(score, self.levels)
        pick = 0 if self.multi_contour else 1
        best = np.array([box_ious(b[pick], truth).max() for b in found])  # per threshold
        for i, iou in enumerate(self.iou_thresholds):
            self.correct[i] += best >= iou
        self.count += 1

    def accuracy_curves(self) -> np.ndarray:
        """(len(iou_thresholds), len(thresholds)) box accuracy at every threshold."""
        return self.correct / max(self.count, 1)

    def compute(self) -> list[float]:
        """Best-threshold accuracy per IoU threshold (NaN before any update)."""
        if self.count == 0:
            return [float("nan")] * len(self.iou_thresholds)
        return [float(v) for v in self.accuracy_curves().max(axis=1)]


class PixelAP:
    """PxAP accumulated item by item (``MaskEvaluator``).

    ``update(score (H, W) in [0, 1], mask (H, W))``: mask 1 (or True) = object, 0 = background,
    255 = ignored. Pixel scores are binned by ``[0, d), [d, 2d), ..., [1 - d, 1), [1, 2), [2, 3]``;
    ``compute()`` = ``sum precision[1:] * diff(recall)`` over the bins, high to low, where
    ``tp + fp > 0``.
    """

    def __init__(self, interval: float = 0.01):
        self.edges = np.append(thresholds(interval), [1.0, 2.0, 3.0])
        self.true_hist = np.zeros(len(self.edges) - 1)
        self.false_hist = np.zeros(len(self.edges) - 1)

    def update(self, score: np.ndarray, mask: np.ndarray) -> None:
        _check(score)
        mask = np.asarray(mask)
        if mask.shape != score.shape:
            raise ValueError(f"mask {mask.shape} and score map {score.shape} differ in shape")
        self.true_hist += np.histogram(score[mask == 1], bins=self.edges)[0]
        self.false_hist += np.histogram(score[mask == 0], bins=self.edges)[0]

    def compute(self) -> float:
        """PxAP in [0, 1]; NaN without a positive pixel or without a positive prediction."""
        tp = self.true_hist[::-1].cumsum()
        fp = self.false_hist[::-1].cumsum()
        positives = self.true_hist.sum()
        if positives <= 0 or ((tp + fp) <= 0).all():
            return float("nan")
        kept = (tp + fp) != 0
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / (tp + fp)
        recall = tp / positives
        return float((precision[1:] * np.diff(recall))[kept[1:]].sum())


# -- the protocol's files -----------------------------------------------------------------------
def resize_box(
    box: Sequence[int], image_size: tuple[int, int], resize: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of an image of ``image_size`` (w, h) in an image of ``resize``
    (w, h), truncated to ints (``resize_bbox``)."""
    sx, sy = resize[0] / image_size[0], resize[1] / image_size[1]
    x0, y0, x1, y1 = (float(v) for v in box)
    return int(x0 * sx), int(y0 * sy), int(x1 * sx), int(y1 * sy)


def write_layout(
    root: str | Path,
    metadata: str | Path,
    items: Iterable[tuple[str, np.ndarray | Tensor, tuple[int, int], Sequence[Sequence[int]]]],
    resize: int = RESIZE_LENGTH,
) -> int:
    """Write score maps and metadata in the protocol's layout.

    Args:
        root: folder of the ``<image_id>.npy`` score maps (float64, ``resize`` x ``resize``,
            normalised). metadata: folder for ``image_ids.txt``, ``image_sizes.txt`` and
            ``localization.txt``. items: ``(image_id, class map (h, w), (W, H) image size,
            boxes (x0, y0, x1, y1) in image pixels)``; an id may hold ``/``.

    Returns:
        The number of items written.
    """
    root, metadata = Path(root), Path(metadata)
    metadata.mkdir(parents=True, exist_ok=True)
    ids, sizes, boxes = [], [], []
    for image_id, class_map, (width, height), item_boxes in items:
        if "," in image_id or "\n" in image_id:
            raise ValueError(f"image id {image_id!r}: no commas or line breaks allowed")
        path = root / f"{image_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, scoremap(class_map, (resize, resize)))
        ids.append(image_id)
        sizes.append(f"{image_id},{width},{height}")
        boxes += [f"{image_id},{','.join(str(int(v)) for v in b)}" for b in item_boxes]
    for name, lines in (("image_ids", ids), ("image_sizes", sizes), ("localization", boxes)):
        (metadata / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    return len(ids)


def _lines(path: Path, fields: int) -> list[list[str]]:
    rows = []
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != fields:
            raise ValueError(f"{path}:{number}: expected {fields} comma-separated fields")
        rows.append(parts)
    return rows


def read_metadata(
    metadata: str | Path,
) -> tuple[list[str], dict[str, tuple[int, int]], dict[str, list[tuple[int, int, int, int]]]]:
    """The image ids, sizes ``(w, h)`` and boxes of a protocol metadata folder (the CUB /
    ILSVRC box layout; OpenImages' mask rows are not read); a malformed line is an error naming
    the file and line."""
    metadata = Path(metadata)
    ids = [row[0] for row in _lines(metadata / "image_ids.txt", 1)]
    sizes: dict[str, tuple[int, int]] = {}
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for name, fields in (("image_sizes", 3), ("localization", 5)):
        path = metadata / f"{name}.txt"
        for number, row in enumerate(_lines(path, fields), 1):
            try:
                values = tuple(int(v) for v in row[1:])
            except ValueError:
                raise ValueError(f"{path}:{number}: expected integers after the id") from None
            if name == "image_sizes":
                sizes[row[0]] = values
            else:
                boxes.setdefault(row[0], []).append(values)
    missing = [i for i in ids if i not in sizes or i not in boxes]
    if missing:
        raise ValueError(f"{metadata}: no size or no box for image id {missing[0]!r}")
    return ids, sizes, boxes


def read_scoremaps(root: str | Path, image_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """``<root>/<image_id>.npy`` for every id (a missing file is an error naming it); each must
    be a 2-D float map in [0, 1] (checked, as ``check_scoremap_validity``)."""
    maps = {}
    for image_id in image_ids:
        path = Path(root) / f"{image_id}.npy"
        if not path.is_file():
            raise ValueError(f"{path}: no score map for image id {image_id!r}")
        score = np.load(path, allow_pickle=False)
        try:
            _check(score)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        maps[image_id] = score
    return maps


def evaluate_layout(root: str | Path, metadata: str | Path, interval: float = 0.01) -> dict:
    """MaxBoxAcc and MaxBoxAccV2 of the score maps under ``root`` against the boxes of a
    protocol metadata folder (boxes rescaled to the maps' size, as ``BoxEvaluator`` does to
    224 x 224); same numbers as ``evaluation.py`` on CUB / ILSVRC layouts, as fractions."""
    ids, sizes, boxes = read_metadata(metadata)
    maps = read_scoremaps(root, ids)
    v1 = BoxAccuracy(multi_contour=False, iou_thresholds=(0.5,), interval=interval)
    v2 = BoxAccuracy(interval=interval)
    for image_id in ids:
        score = maps[image_id]
        shape = (score.shape[1], score.shape[0])
        truth = np.array([resize_box(b, sizes[image_id], shape) for b in boxes[image_id]])
        v1.update(score, truth)
        v2.update(score, truth)
    accuracies = v2.compute()
    return {
        "max_box_acc": v1.compute()[0],
        "max_box_acc_v2": float(np.mean(accuracies)),
        **{
            f"max_box_acc_iou{round(100 * t)}": a
            for t, a in zip(v2.iou_thresholds, accuracies, strict=True)
        },
    }


def export_run(run: str | Path, out: str | Path, split: str = "test") -> int:
    """Write a trained run's class maps on ``split`` in the protocol's layout: ``out/scoremaps``
    and ``out/metadata`` (one item ``<class>/<image>`` per image and class present, with its
    boxes), for the protocol's own ``evaluation.py``. Returns the number of items."""
    import torch

    from negev.engine import load_model, predict, prepare_data

    plugin, config, model, meta = load_model(run)
    examples = getattr(prepare_data(plugin, config, None), split)
    _, maps = predict(model, plugin, examples, config.batch_size, torch.device("cpu"), True)
    classes = meta["classes"]

    def items():
        for example, item in zip(examples, maps, strict=True):
            truth = example.truth
            if "boxes" not in truth:
                continue
            height, width = truth["size"]
            name = Path(example.name).name.replace(",", "_")
            for c in sorted({b[0] for b in truth["boxes"]}):
                boxes = [b[1:] for b in truth["boxes"] if b[0] == c]
                yield f"{classes[c].replace(',', '_')}/{name}", item[c], (width, height), boxes

    out = Path(out)
    return write_layout(out / "scoremaps", out / "metadata", items())


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="A trained image run's maps in the WSOL protocol's layout, and its scores"
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="run directory")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    count = export_run(args.checkpoint, args.out, args.split)
    result = evaluate_layout(args.out / "scoremaps", args.out / "metadata")
    print(f"wrote {count} items to {args.out}: " + json.dumps(result))


if __name__ == "__main__":
    main()
