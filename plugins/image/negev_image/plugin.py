"""The ``image`` modality: the cells of a CNN's last feature map are the regions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from negev.files import safe_name
from negev.inference import ItemPrediction
from negev.inference.outputs import save_region_map
from negev.metrics import average_precision
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import item_stem, write_file
from negev_image import readers
from negev_image.crf import DenseCRF
from negev_image.digits import DigitCanvasConfig, digits_demo
from negev_image.drawing import evidence_overlay, grid
from negev_image.images import read_image, to_model_input
from negev_image.localization import (
    SegmentationIoU,
    corloc_counts,
    map_peaks,
    pointing_ap,
    pointing_game,
    upsample_maps,
)
from negev_image.options import IMAGE_SIZE, ImageOptions
from negev_image.transforms import model_view
from negev_image.trunks import ImageEncoder, SmallCNN, load_trunk_weights, resnet_trunk
from negev_image.wsol import (
    BoxAccuracy,
    PixelAP,
    contour_boxes,
    resize_box,
    scoremap,
)

# Tolerances of the papers, in pixels of images about 448 px wide (VOC's are ~500 px).
OQUAB_TOLERANCE = 18
ZHANG_TOLERANCE = 15


class ImagePlugin(ModalityPlugin):
    """Images from a Pascal VOC directory, a COCO instances JSON or a CSV of ``path,labels``;
    the built-in demo (no ``--data``, or ``demo``) is cluttered canvases of handwritten digits.

    Plugin options: :class:`~negev_image.options.ImageOptions` (``negev plugins --options
    image``). Pretrained ResNet weights come from ``--weights PATH`` (a torchvision state dict).
    Augmentation (``augment``, training only): random resized crop + horizontal flip.
    Test-time views averaged by the test evaluation: ``test_scales`` and ``test_flip``.
    """

    name = "image"
    description = "Images: CNN feature-map cells as regions (ResNet or a small CNN), WILDCAT"
    channels_last = True
    options_class = ImageOptions
    takes_weights = True

    def __init__(self) -> None:
        self.load_state({})

    def default_config(self) -> dict[str, Any]:
        return {
            "epochs": 16,
            "batch_size": 32,
            "lr": 2e-3,
            "pooling": "wildcat",
            "kmax": 0.2,
            "kmin": 0.2,
            "alpha": 0.7,
            "num_maps": 4,
        }

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        options = self.options_of(config)
        seed = int(config.get("seed", 0))
        limit = options.max_pixels
        if spec is None or spec == "demo":
            canvas = DigitCanvasConfig(size=options.canvas)
            sizes = (options.demo_train, options.demo_val, options.demo_test)
            return digits_demo(sizes, canvas, seed=0)
        path = Path(spec)
        labelled = config.get("labelled", True)
        if path.is_dir():
            voc = all((path / folder).is_dir() for folder in ("Annotations", "JPEGImages"))
            if not labelled and not voc:  # predict: any folder of images
                return readers.read_folder(path, seed, limit)
            return readers.read_voc(path, seed, limit)
        if not path.is_file():
            raise ValueError(f"--data {spec}: no such file or directory")
        if path.suffix == ".json":
            return readers.read_coco(path, options.image_root, seed, limit)
        if path.suffix == ".csv":
            classes = options.classes
            names = classes.split("|") if classes else None
            return readers.read_csv(path, names, seed, limit, labelled)
        raise ValueError(
            f"--data {spec}: expected a VOC directory, a COCO .json or a .csv of path,labels "
            "(or, to predict, a folder of images)"
        )

    def fit_state(self, data: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        options = self.options_of(config)
        size = options.image_size
        if size is None:
            size = data.train[0].inputs.shape[-1] if data.builtin else IMAGE_SIZE
        augment = options.augment if options.augment is not None else not data.builtin
        return {"image_size": int(size), "augment": augment, "crop_scale": options.crop_scale}

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        """``self.options``: the run's options with ``image_size`` and ``augment`` resolved."""
        options = self.options_of(config)
        self.options = dataclasses.replace(
            options,
            image_size=int(state.get("image_size", IMAGE_SIZE)),
            augment=bool(state.get("augment", False)),
            crop_scale=float(state.get("crop_scale", options.crop_scale)),
        )

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell of the trunk."""
        return 4 if self.options.trunk == "small" else 32

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        options = self.options_of(config)
        trunk = options.trunk
        weights = config.get("weights")
        if trunk == "small":
            if weights:
                raise ValueError("--weights loads torchvision ResNet weights: use a resnet trunk")
            net = SmallCNN(options.width, options.spatial)
            return ImageEncoder(net, net.out_channels)
        if trunk.startswith("resnet") and trunk[6:].isdigit():
            net, channels = resnet_trunk(int(trunk[6:]))
            if weights:
                load_trunk_weights(net, weights)
            return ImageEncoder(net, channels)
        raise ValueError(f"plugin option trunk must be 'small' or 'resnet<depth>', got {trunk!r}")

    def _pixels(self, example: Example) -> Tensor:
        inputs = example.inputs
        if isinstance(inputs, Tensor):
            return inputs
        return read_image(inputs, self.options.max_pixels)

    def load_item(
        self,
        example: Example,
        *,
        train: bool,
        generator: torch.Generator,
        view: dict[str, Any] | None = None,
    ) -> Example:
        """The example with ``inputs`` = (3, S, S) float32
        (:func:`negev_image.transforms.model_view`): a random resized crop and flip when
        training with ``augment``, else the whole image at the view's ``size`` (default
        ``image_size``), flipped if the view says so."""
        view, options = view or {}, self.options
        augment = train and options.augment
        inputs = model_view(
            example.inputs,
            int(view.get("size", options.image_size)),
            generator if augment else None,
            (options.crop_scale, 1.0),
            flip=bool(view.get("flip", False)) if not augment else None,
            max_pixels=options.max_pixels,
        )
        return dataclasses.replace(example, inputs=inputs)

    def test_views(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Every side of ``test_scales`` (the plain ``image_size`` first), each also flipped
        with ``test_flip``."""
        options = self.options_of(config)
        sizes = [self.options.image_size]
        sizes += [s for s in dict.fromkeys(options.test_scales) if s not in sizes]
        flips = (False, True) if options.test_flip else (False,)
        return [{"size": s, "flip": f} for s in sizes for f in flips]

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """``{"images": (B, 3, S, S) float32}``, S = ``image_size``, ImageNet-normalised;
        examples from :meth:`load_item` are stacked as they are."""
        return {"images": torch.stack([self._model_input(e) for e in examples])}

    def _model_input(self, example: Example) -> Tensor:
        inputs = example.inputs
        if isinstance(inputs, Tensor) and inputs.is_floating_point():  # from load_item
            return inputs
        return to_model_input(self._pixels(example), self.options.image_size)

    def read_input(self, text: str) -> Example:
        read_image(text, self.options.max_pixels)  # a clear error naming the file now
        return Example(text, text, ())

    def region_names(self, example: Example) -> list[str]:
        side = math.ceil(self.options.image_size / self.stride)
        return [f"cell(row {r}, col {c})" for r in range(side) for c in range(side)]

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """Per class a PNG of the image shaded by the class map (green for, red against) with
        the kept regions outlined, and ``<item>_grid.png`` with the image and every class."""
        stem = item_stem(example.name)
        pixels = self._pixels(example)
        written, tiles = [], []
        original = evidence_overlay(pixels, torch.zeros(1, 1), Path(example.name).name)
        for c in scores.argsort(descending=True).tolist():
            chosen = None if selected is None else (selected[0][c], selected[1][c])
            tile = evidence_overlay(
                pixels, maps[c], f"{classes[c]} {float(scores[c]):+.2f}", chosen
            )
            name = f"{stem}_{safe_name(classes[c])}.png"
            written.append(write_file(out_dir, name, lambda path, t=tile: t.save(path, "PNG")))
            tiles.append(tile)
        written.append(
            write_file(out_dir, f"{stem}_grid.png", lambda path: grid([original, *tiles], path))
        )
        return written

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """Per image ``maps/<id>.npy`` (C, h, w) at the region grid, and the wsolevaluation
        protocol's score map of its top class: ``heatmaps/<id>.npy`` (H, W) float32 in [0, 1] at
        the image's original size (bicubic upsampling, then min-max normalisation, as
        :func:`negev_image.wsol.scoremap`), with ``heatmaps/image_ids.txt`` (the ids, one a
        line) and ``heatmaps/class_labels.txt`` (``id,class index`` of each heatmap)."""
        heatmaps = Path(out_dir) / "heatmaps"
        heatmaps.mkdir(parents=True, exist_ok=True)
        written, ids, labels = [], [], []
        for prediction in predictions:
            written.append(save_region_map(prediction, out_dir))
            example = prediction.example
            size = example.truth.get("size") or self._pixels(example).shape[-2:]
            top = int(prediction.scores.argmax())
            path = heatmaps / f"{prediction.id}.npy"
            heat = scoremap(prediction.maps[top], tuple(int(v) for v in size))
            np.save(path, heat.astype(np.float32))
            written.append(path)
            ids.append(prediction.id)
            labels.append(f"{prediction.id},{top}")
        for name, lines in (("image_ids.txt", ids), ("class_labels.txt", labels)):
            (heatmaps / name).write_text("".join(f"{line}\n" for line in lines))
            written.append(heatmaps / name)
        return written

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """VOC 2007 11-point mAP (missing labels, e.g. VOC's difficult-only classes, left out),
        then pointing AP (Oquab), pointing game (Zhang), CorLoc, the WSOL protocol's
        MaxBoxAcc, MaxBoxAccV2 and PxAP (:mod:`negev_image.wsol`, over the (image, present
        class) pairs, maps, boxes and masks brought to ``wsol_size`` x ``wsol_size`` (224) as
        the protocol does; ``wsol_interval`` threshold step) and segmentation mIoU against the
        items' boxes and masks, with ``miou_crf`` after the dense CRF when ``crf=true``
        (:mod:`negev_image.crf`; ``crf_pixels``); the class scores default to the maps'
        maxima."""
        if scores is None:
            scores = torch.stack([m.flatten(1).amax(1) for m in maps])
        voc07 = []
        for c in range(len(classes)):
            keep = [i for i, e in enumerate(examples) if c not in e.unknown]
            truth = torch.tensor([float(c in examples[i].labels) for i in keep])
            if truth.sum() > 0:
                voc07.append(float(average_precision(scores[keep, c], truth, "voc07")))
        base = {"mAP_voc07": float(np.mean(voc07))} if voc07 else {}
        options = self.options
        peaks, boxes = [], []
        located = [0, 0]  # CorLoc (correct, total), counted image by image: full-size maps of a
        # whole test set would not fit in memory
        segmentation = SegmentationIoU(len(classes), options.seg_threshold)
        has_mask = False
        with_boxes = [i for i, e in enumerate(examples) if "boxes" in e.truth]
        interval = options.wsol_interval
        box_v1 = BoxAccuracy(multi_contour=False, iou_thresholds=(0.5,), interval=interval)
        box_v2, pixel_ap = BoxAccuracy(interval=interval), PixelAP(interval)

        side = options.wsol_size

        def wsol_update(item_maps: Tensor, truth: dict[str, Any], mask: Any) -> None:
            """The protocol's items: every (image, class present) pair, its boxes and mask, at
            ``wsol_size`` x ``wsol_size`` (the protocol's 224; 0: the image's own size)."""
            height, width = truth["size"]
            size = (side, side) if side else (height, width)
            if mask is not None and size != (height, width):
                mask = cv2.resize(np.asarray(mask, dtype=np.uint8), size[::-1],
                                  interpolation=cv2.INTER_NEAREST)  # fmt: skip
            for c in sorted({b[0] for b in truth["boxes"]}):
                score = scoremap(item_maps[c], size)
                boxes = np.array([resize_box(b[1:], (width, height), size[::-1])
                                  for b in truth["boxes"] if b[0] == c])  # fmt: skip
                found = contour_boxes(score, box_v2.levels)
                box_v1.update(score, boxes, found)
                box_v2.update(score, boxes, found)
                if mask is not None:
                    pixel_ap.update(score, np.where(mask == 255, 255, mask == c + 1))

        crf = None
        if options.crf:
            crf = DenseCRF(max_pixels=options.crf_pixels)
        refined = SegmentationIoU(len(classes), segmentation.threshold)

        def crf_image(i: int) -> Tensor:
            """(3, H, W) RGB of item i at its truth's size."""
            pixels = self._pixels(examples[i])
            size = tuple(examples[i].truth["size"])
            if tuple(pixels.shape[-2:]) != size:
                pixels = torch.nn.functional.interpolate(
                    pixels[None].float(), size=size, mode="bilinear", align_corners=False
                )[0]
            return pixels

        for i in with_boxes:
            truth = examples[i].truth
            full = upsample_maps(maps[i], tuple(truth["size"]))
            peaks.append(map_peaks(full))
            boxes.append(truth["boxes"])
            hits, total = corloc_counts(full, truth["boxes"])
            located[0] += hits
            located[1] += total
            mask = readers.truth_mask(truth)
            wsol_update(maps[i], truth, mask)
            if mask is not None:
                has_mask = True
                segmentation.update(full, torch.sigmoid(scores[i]), mask)
                if crf is not None:
                    refined.update_labels(
                        refined.predict_crf(crf_image(i), full, torch.sigmoid(scores[i]), crf),
                        mask,
                    )
        if not with_boxes:
            return base
        side = max(examples[with_boxes[0]].truth["size"])
        scale = side / IMAGE_SIZE if side < IMAGE_SIZE else 1.0
        tol_ap, tol_game = options.pointing_tolerance, options.game_tolerance
        tol_ap = float(round(OQUAB_TOLERANCE * scale)) if tol_ap is None else tol_ap
        tol_game = float(round(ZHANG_TOLERANCE * scale)) if tol_game is None else tol_game
        metrics = {
            "pointing_ap": pointing_ap(scores[with_boxes].numpy(), peaks, boxes, tol_ap)[0],
            "pointing_game": pointing_game(peaks, boxes, tol_game),
            "corloc": located[0] / located[1] if located[1] else float("nan"),
            "max_box_acc": box_v1.compute()[0],
            "max_box_acc_v2": float(np.mean(box_v2.compute())),
        }
        if has_mask:
            metrics["miou"] = segmentation.compute()
            metrics["pxap"] = pixel_ap.compute()
            if crf is not None:
                metrics["miou_crf"] = refined.compute()
        return {**base, **{k: float(v) for k, v in metrics.items() if not np.isnan(v)}}
