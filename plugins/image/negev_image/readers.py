"""Image datasets on disk: Pascal VOC directories, COCO instances JSON, CSV of ``path,labels``,
and (for prediction, without labels) a folder of image files.

Every reader checks each image once (decoded in full, so a truncated file is caught) and returns
the items it cannot use as :class:`~negev.plugins.BadItem` with the file's name and the reason,
never dropping one silently. ``truth`` holds, for evaluation only: ``boxes`` (class, x0, y0, x1,
y1 in pixels, inclusive), ``size`` (H, W), and where the dataset has them ``mask_path`` (a VOC
SegmentationClass PNG) or ``polygons`` (COCO).
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from negev.plugins import BadItem, DataSplits, Example
from negev.plugins.manifest import read_manifest
from negev_image.images import MAX_PIXELS, check_image

__all__ = ["IMAGE_SUFFIXES", "VOC_CLASSES", "read_coco", "read_csv", "read_folder", "read_voc",
           "truth_mask"]  # fmt: skip

#: File suffixes :func:`read_folder` takes for images (what Pillow reads; any case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]  # fmt: skip


class _AnnotationError(ValueError):
    """An annotation that parses but is not usable (the message says why)."""


def _split_ids(root: Path, seed: int) -> tuple[dict[str, list[str]], list[BadItem]]:
    """Image ids of train / val / test from ImageSets/Main: train.txt and val.txt, or trainval.txt
    cut 85/15 when those are missing; test.txt, else val. An id listed twice in a file, or in
    the test / val file as well as in an earlier split's, is a bad item (kept where first seen).
    """
    main = root / "ImageSets" / "Main"
    bad: list[BadItem] = []

    def ids(name: str) -> dict[str, int] | None:
        """Each id of ``name``.txt with the line that lists it."""
        path = main / f"{name}.txt"
        if not path.is_file():
            return None
        lines: dict[str, int] = {}
        text = path.read_bytes().decode("utf-8-sig", errors="replace")  # a bad id: no file
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            image_id = line.split()[0]
            if image_id in lines:
                reason = f"image {image_id} is listed again (first at line {lines[image_id]})"
                bad.append(BadItem(f"ImageSets/Main/{name}.txt:{number}", reason))
            else:
                lines[image_id] = number
        return lines

    files = {"train": ids("train"), "val": ids("val"), "test": ids("test")}
    if files["train"] is None or files["val"] is None:
        trainval = ids("trainval")
        if trainval is None:
            raise ValueError(f"{main}: needs train.txt and val.txt, or trainval.txt")
        shuffled = list(trainval)
        random.Random(seed).shuffle(shuffled)
        cut = int(0.85 * len(shuffled))
        files["train"] = {i: trainval[i] for i in shuffled[:cut]}
        files["val"] = {i: trainval[i] for i in shuffled[cut:]}
    owner: dict[str, str] = {}
    splits: dict[str, list[str]] = {}
    for split, lines in files.items():
        if lines is None:  # no test.txt: the test split is val
            continue
        splits[split] = []
        for image_id, number in lines.items():
            if image_id in owner:
                reason = f"image {image_id} is in {owner[image_id]} as well (splits must not share)"
                bad.append(BadItem(f"ImageSets/Main/{split}.txt:{number}", reason))
            else:
                owner[image_id] = split
                splits[split].append(image_id)
    splits.setdefault("test", splits["val"])
    return splits, bad


def read_voc(root: str | Path, seed: int = 0, max_pixels: int = MAX_PIXELS) -> DataSplits:
    """A Pascal VOC directory (VOCdevkit/VOC2007 layout: Annotations, JPEGImages,
    ImageSets/Main, optionally SegmentationClass).

    Classes are the 20 VOC classes when every object name is one of them, else the sorted names
    found. A class present only as "difficult" objects is a missing label (``Example.unknown``),
    as in VOC's classification protocol; difficult boxes are left out of the localization truth.
    """
    root = Path(root)
    for folder in ("Annotations", "JPEGImages"):
        if not (root / folder).is_dir():
            raise ValueError(f"{root} is not a VOC directory: {folder}/ is missing")
    ids, bad = _split_ids(root, seed)
    parsed: dict[str, tuple[list[tuple[str, int, tuple[int, ...]]], tuple[int, int]] | None] = {}
    for image_id in dict.fromkeys(i for split in ids.values() for i in split):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        name = f"Annotations/{image_id}.xml"
        try:
            tree = ET.parse(xml_path)
            objects = []
            for obj in tree.getroot().iter("object"):
                box = obj.find("bndbox")
                coords = tuple(
                    int(float(box.find(k).text)) - 1 for k in ("xmin", "ymin", "xmax", "ymax")
                )
                difficult = int(obj.findtext("difficult", "0").strip() or 0)
                label = obj.findtext("name", "").strip()
                if not label:
                    raise _AnnotationError("an <object> has no <name>")
                objects.append((label, difficult, coords))
        except FileNotFoundError:
            bad.append(BadItem(name, "annotation file is missing"))
            parsed[image_id] = None
            continue
        except ET.ParseError as exc:
            bad.append(BadItem(name, f"broken XML: {exc}"))
            parsed[image_id] = None
            continue
        except _AnnotationError as exc:
            bad.append(BadItem(name, str(exc)))
            parsed[image_id] = None
            continue
        except (AttributeError, TypeError, ValueError, OverflowError):  # OverflowError: "inf"
            bad.append(
                BadItem(name, "an <object> lacks a <bndbox> with numeric xmin/ymin/xmax/ymax")
            )
            parsed[image_id] = None
            continue
        image_path = root / "JPEGImages" / f"{image_id}.jpg"
        try:
            size = check_image(image_path, max_pixels)
        except ValueError as exc:
            reason = str(exc).removeprefix(f"{image_path}: ")
            bad.append(BadItem(f"JPEGImages/{image_id}.jpg", reason))
            parsed[image_id] = None
            continue
        parsed[image_id] = (objects, size)

    names = {o[0] for item in parsed.values() if item for o in item[0]}
    classes = list(VOC_CLASSES) if names <= set(VOC_CLASSES) else sorted(names)
    splits: dict[str, list[Example]] = {}
    for split, split_ids in ids.items():
        examples = []
        for image_id in split_ids:
            item = parsed[image_id]
            if item is None:
                continue
            objects, size = item
            labels = sorted({classes.index(n) for n, difficult, _ in objects if not difficult})
            only_difficult = sorted({classes.index(n) for n, d, _ in objects if d} - set(labels))
            boxes = [(classes.index(n), *c) for n, d, c in objects if not d]
            truth: dict[str, Any] = {"boxes": boxes, "size": size}
            mask = root / "SegmentationClass" / f"{image_id}.png"
            if mask.is_file() and classes == VOC_CLASSES:
                truth["mask_path"] = str(mask)
            path = str(root / "JPEGImages" / f"{image_id}.jpg")
            examples.append(Example(path, path, tuple(labels), truth, tuple(only_difficult)))
        splits[split] = examples
    return DataSplits(splits["train"], splits["val"], splits["test"], classes, True, bad)


def _coco_root(path: Path, image_root: str | None) -> Path:
    """Where a COCO JSON's images are: ``image_root``, else COCO's own layout
    (annotations/instances_val2017.json -> val2017/), else the JSON's folder."""
    if image_root:
        return Path(image_root)
    if path.parent.name == "annotations":
        guess = path.parent.parent / path.stem.removeprefix("instances_")
        if guess.is_dir():
            return guess
    return path.parent


def _is_box(value: Any) -> bool:
    """A COCO ``bbox``: four numbers [x, y, width, height]."""
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def read_coco(
    path: str | Path, image_root: str | None = None, seed: int = 0, max_pixels: int = MAX_PIXELS
) -> DataSplits:
    """A COCO instances JSON (``images``, ``annotations``, ``categories``), cut 70/15/15 by seed.

    Classes are the categories in id order; ``iscrowd`` regions count as labels but not as boxes.
    """
    path = Path(path)
    try:
        coco = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(f"{path} is not a COCO instances file: no {key!r} list")
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    classes = [c["name"] for c in categories]
    index = {c["id"]: i for i, c in enumerate(categories)}
    root = _coco_root(path, image_root)
    by_image: dict[Any, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    examples, bad = [], []
    seen_ids: dict[Any, str] = {}  # image id -> file name
    seen_files: dict[str, Any] = {}  # file name -> image id
    for image in coco["images"]:
        file = root / image["file_name"]
        if image["id"] in seen_ids or image["file_name"] in seen_files:
            reason = (
                f"image id {image['id']!r} is given twice (first for {seen_ids[image['id']]})"
                if image["id"] in seen_ids
                else f"listed twice (image ids {seen_files[image['file_name']]!r}, {image['id']!r})"
            )
            bad.append(BadItem(image["file_name"], reason))
            continue
        seen_ids[image["id"]] = image["file_name"]
        seen_files[image["file_name"]] = image["id"]
        anns = by_image.get(image["id"], [])
        unknown = [a for a in anns if a.get("category_id") not in index]
        no_box = [a for a in anns if not a.get("iscrowd") and not _is_box(a.get("bbox"))]
        if no_box:
            bad.append(
                BadItem(
                    image["file_name"],
                    f"annotation {no_box[0].get('id')} has no bbox [x, y, width, height]",
                )
            )
            continue
        if unknown:
            bad.append(
                BadItem(
                    image["file_name"],
                    f"annotation {unknown[0].get('id')} has unknown category_id "
                    f"{unknown[0].get('category_id')!r}",
                )
            )
            continue
        try:
            size = check_image(file, max_pixels)
        except ValueError as exc:
            bad.append(BadItem(image["file_name"], str(exc).removeprefix(f"{file}: ")))
            continue
        boxes, polygons = [], []
        for ann in anns:
            c = index[ann["category_id"]]
            if ann.get("iscrowd"):
                continue
            x, y, w, h = ann["bbox"]
            boxes.append((c, int(x), int(y), int(x + w) - 1, int(y + h) - 1))
            if isinstance(ann.get("segmentation"), list):
                polygons += [(c, poly) for poly in ann["segmentation"]]
        labels = tuple(sorted({index[a["category_id"]] for a in anns}))
        truth = {"boxes": boxes, "size": size, "polygons": polygons}
        examples.append(Example(str(file), str(file), labels, truth))
    return DataSplits.shuffled(examples, classes, True, bad, seed)


def read_csv(
    path: str | Path,
    classes: list[str] | None = None,
    seed: int = 0,
    max_pixels: int = MAX_PIXELS,
    labelled: bool = True,
) -> DataSplits:
    """A manifest CSV (:mod:`negev.plugins.manifest`): ``path``, ``labels`` (``|``-separated;
    empty = no class present; not read when not ``labelled``), optional ``split`` (else cut
    70/15/15 by seed); relative paths are relative to the CSV's folder. ``classes`` fixes the
    class list (default: the labels found).
    """
    manifest = read_manifest(path, classes, labelled=labelled)
    examples = []
    for row in manifest.rows:
        try:
            size = check_image(row.file, max_pixels)
        except ValueError as exc:
            manifest.bad.append(BadItem(row.name, str(exc).removeprefix(f"{row.file}: ")))
            continue
        examples.append((row, Example(str(row.file), str(row.file), row.labels, {"size": size})))
    return manifest.splits(examples, seed)


def read_folder(root: str | Path, seed: int = 0, max_pixels: int = MAX_PIXELS) -> DataSplits:
    """Every image file under ``root`` (its sub-folders too, in sorted path order; files of
    other suffixes than :data:`IMAGE_SUFFIXES` and hidden ones are not items, and linked
    sub-folders are not followed), unlabelled: the items ``negev predict --data FOLDER`` scores.
    An image that cannot be decoded, or a link to an image file that is not there, is a bad
    item.

    Raises:
        ValueError: when ``root`` holds no image file.
    """
    root = Path(root)
    files = sorted(
        path for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and (path.is_file() or path.is_symlink())
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )  # fmt: skip
    if not files:
        raise ValueError(
            f"{root}: no image file ({', '.join(IMAGE_SUFFIXES)}) in it or its sub-folders"
        )
    examples, bad = [], []
    for file in files:
        try:
            size = check_image(file, max_pixels)
        except ValueError as exc:
            bad.append(BadItem(str(file), str(exc).removeprefix(f"{file}: ")))
            continue
        examples.append((None, Example(str(file), str(file), (), {"size": size})))
    return DataSplits.grouped(examples, [], True, bad, seed)


def truth_mask(truth: dict[str, Any]) -> np.ndarray | None:
    """The (H, W) ground-truth label map of an item (0 background, c + 1 class c, 255 ignored),
    from ``mask`` (an array), ``mask_path`` (a VOC palette PNG) or ``polygons`` (COCO); None
    when the item has none."""
    if "mask" in truth:
        return np.asarray(truth["mask"])
    if "mask_path" in truth:
        return np.asarray(Image.open(truth["mask_path"]))
    if truth.get("polygons"):
        height, width = truth["size"]
        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for c, polygon in truth["polygons"]:
            if len(polygon) >= 6:
                draw.polygon([float(v) for v in polygon], fill=c + 1)
        return np.asarray(canvas)
    return None
