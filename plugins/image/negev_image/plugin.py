"""The ``image`` modality: the cells of a CNN's last feature map are the regions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from negev.metrics import average_precision
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import file_stem
from negev_image import readers
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
from negev_image.trunks import ImageEncoder, SmallCNN, load_trunk_weights, resnet_trunk

# Tolerances of the papers, in pixels of images about 448 px wide (VOC's are ~500 px).
OQUAB_TOLERANCE = 18
ZHANG_TOLERANCE = 15


class ImagePlugin(ModalityPlugin):
    """Images from a Pascal VOC directory, a COCO instances JSON or a CSV of ``path,labels``;
    the built-in demo (no ``--data``, or ``demo``) is cluttered canvases of handwritten digits.

    Plugin options (``--set key=value``): ``trunk`` (``small`` or ``resnet18`` ... ``resnet152``),
    ``width`` and ``spatial`` (small trunk: channels, 3x3 layers), ``image_size`` (side the
    images are resized to; default 448, the demo's canvas size for the demo), ``image_root``
    (COCO images), ``classes`` (CSV, ``|``-separated), ``demo_train`` / ``demo_val`` /
    ``demo_test`` / ``canvas`` (demo sizes),
    ``pointing_tolerance`` / ``game_tolerance`` (pixels; default 18 and 15 scaled to the image
    size), ``seg_threshold`` (segmentation background threshold). Pretrained ResNet weights come
    from ``--weights PATH`` (a torchvision state dict).
    """

    name = "image"
    description = "Images: CNN feature-map cells as regions (ResNet or a small CNN), WILDCAT"

    def __init__(self) -> None:
        self.image_size = 448
        self.stride = 32
        self._options: dict[str, Any] = {}  # plugin options of the data last loaded

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
            "plugin": {"trunk": "small", "width": 32, "spatial": 5},
        }

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        options = self._options = dict(config.get("plugin", {}))
        seed = int(config.get("seed", 0))
        if spec is None or spec == "demo":
            canvas = DigitCanvasConfig(size=int(options.get("canvas", 64)))
            sizes = tuple(
                int(options.get(f"demo_{s}", d))
                for s, d in (("train", 2000), ("val", 300), ("test", 600))
            )
            return digits_demo(sizes, canvas, seed=0)
        path = Path(spec)
        if path.is_dir():
            return readers.read_voc(path, seed)
        if not path.is_file():
            raise ValueError(f"--data {spec}: no such file or directory")
        if path.suffix == ".json":
            return readers.read_coco(path, options.get("image_root"), seed)
        if path.suffix == ".csv":
            classes = options.get("classes")
            return readers.read_csv(path, classes.split("|") if classes else None, seed)
        raise ValueError(
            f"--data {spec}: expected a VOC directory, a COCO .json or a .csv of path,labels"
        )

    def fit_state(self, data: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        options = config.get("plugin", {})
        size = options.get("image_size")
        if size is None:
            size = data.train[0].inputs.shape[-1] if data.builtin else 448
        return {"image_size": int(size)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.image_size = int(state.get("image_size", 448))

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        options = config.get("plugin", {})
        trunk = str(options.get("trunk", "small"))
        weights = config.get("weights")
        if trunk == "small":
            if weights:
                raise ValueError("--weights loads torchvision ResNet weights: use a resnet trunk")
            self.stride = 4
            net = SmallCNN(int(options.get("width", 32)), int(options.get("spatial", 5)))
            return ImageEncoder(net, net.out_channels)
        if trunk.startswith("resnet") and trunk[6:].isdigit():
            net, channels = resnet_trunk(int(trunk[6:]))
            if weights:
                load_trunk_weights(net, weights)
            self.stride = 32
            return ImageEncoder(net, channels)
        raise ValueError(f"plugin option trunk must be 'small' or 'resnet<depth>', got {trunk!r}")

    def _pixels(self, example: Example) -> Tensor:
        inputs = example.inputs
        return inputs if isinstance(inputs, Tensor) else read_image(inputs)

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """``{"images": (B, 3, S, S) float32}``, S = ``image_size``, ImageNet-normalised."""
        return {
            "images": torch.stack(
                [to_model_input(self._pixels(e), self.image_size) for e in examples]
            )
        }

    def read_input(self, text: str) -> Example:
        read_image(text)  # a clear error naming the file now rather than in the model
        return Example(text, text, ())

    def region_names(self, example: Example) -> list[str]:
        side = math.ceil(self.image_size / self.stride)
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
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = file_stem(Path(example.name).stem if Path(example.name).suffix else example.name)
        pixels = self._pixels(example)
        written, tiles = [], []
        original = evidence_overlay(pixels, torch.zeros(1, 1), Path(example.name).name)
        for c in scores.argsort(descending=True).tolist():
            chosen = None if selected is None else (selected[0][c], selected[1][c])
            tile = evidence_overlay(
                pixels, maps[c], f"{classes[c]} {float(scores[c]):+.2f}", chosen
            )
            path = out_dir / f"{stem}_{file_stem(classes[c])}.png"
            tile.save(path)
            written.append(path)
            tiles.append(tile)
        written.append(grid([original, *tiles], out_dir / f"{stem}_grid.png"))
        return written

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """VOC 2007 11-point mAP (missing labels, e.g. VOC's difficult-only classes, left out),
        then pointing AP (Oquab), pointing game (Zhang), CorLoc and segmentation mIoU against the
        items' boxes and masks; the class scores default to the maps' maxima."""
        if scores is None:
            scores = torch.stack([m.flatten(1).amax(1) for m in maps])
        voc07 = []
        for c in range(len(classes)):
            keep = [i for i, e in enumerate(examples) if c not in e.unknown]
            truth = torch.tensor([float(c in examples[i].labels) for i in keep])
            if truth.sum() > 0:
                voc07.append(float(average_precision(scores[keep, c], truth, "voc07")))
        base = {"mAP_voc07": float(np.mean(voc07))} if voc07 else {}
        options = self._options
        peaks, boxes = [], []
        located = [0, 0]  # CorLoc (correct, total), counted image by image: full-size maps of a
        # whole test set would not fit in memory
        segmentation = SegmentationIoU(len(classes), float(options.get("seg_threshold", 0.5)))
        has_mask = False
        with_boxes = [i for i, e in enumerate(examples) if "boxes" in e.truth]
        for i in with_boxes:
            truth = examples[i].truth
            full = upsample_maps(maps[i], tuple(truth["size"]))
            peaks.append(map_peaks(full))
            boxes.append(truth["boxes"])
            hits, total = corloc_counts(full, truth["boxes"])
            located[0] += hits
            located[1] += total
            mask = readers.truth_mask(truth)
            if mask is not None:
                has_mask = True
                segmentation.update(full, torch.sigmoid(scores[i]), mask)
        if not with_boxes:
            return base
        side = max(examples[with_boxes[0]].truth["size"])
        scale = side / 448 if side < 448 else 1.0
        tol_ap = float(options.get("pointing_tolerance", round(OQUAB_TOLERANCE * scale)))
        tol_game = float(options.get("game_tolerance", round(ZHANG_TOLERANCE * scale)))
        metrics = {
            "pointing_ap": pointing_ap(scores[with_boxes].numpy(), peaks, boxes, tol_ap)[0],
            "pointing_game": pointing_game(peaks, boxes, tol_game),
            "corloc": located[0] / located[1] if located[1] else float("nan"),
        }
        if has_mask:
            metrics["miou"] = segmentation.compute()
        return {**base, **{k: float(v) for k, v in metrics.items() if not np.isnan(v)}}
