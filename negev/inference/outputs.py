"""What ``negev predict`` writes into its output directory.

::

    out/
      scores.csv          item, id, one column per class (the score, a logit), decision
      maps/<id>.npy       (C, *regions) float32 class maps (the default evidence; plugins add
                          their own formats through ``ModalityPlugin.write_evidence``)
      bad_items.json      the items that could not be read or loaded, when there are any
      predictions.json    the checkpoint, the counts and the entries written (what --overwrite
                          removes before a new prediction)
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from torch import Tensor

from negev.inference.predictor import ItemPrediction, Predictor
from negev.plugins import BadItem

__all__ = ["MANIFEST", "prepare_out", "region_map", "save_region_map", "write_predictions"]

SCORES = "scores.csv"
MAPS = "maps"
BAD = "bad_items.json"
MANIFEST = "predictions.json"


def prepare_out(out_dir: Path, overwrite: bool) -> None:
    """Make sure nothing in ``out_dir`` gets replaced unasked: a directory that holds anything
    is refused unless ``overwrite``, which removes what the previous prediction there wrote
    (the entries of its ``predictions.json``; other files are left alone)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a directory")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"--out {out_dir} is not empty: pass --overwrite to replace it")
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        for entry in json.loads(manifest.read_text()).get("entries", []):
            path = out_dir / entry
            if path.resolve().parent != out_dir.resolve():
                continue  # a manifest names top-level entries only
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        manifest.unlink()


def region_map(prediction: ItemPrediction) -> np.ndarray:
    """The item's (C, *regions) float32 maps; with a mask, the trailing regions it does not
    have along each region dim are cut and the others it does not have hold NaN."""
    maps: Tensor = prediction.maps
    if prediction.mask is not None:
        mask = prediction.mask
        for dim in range(mask.dim()):
            other = tuple(d for d in range(mask.dim()) if d != dim)
            present = mask.any(dim=other) if other else mask
            extent = int(present.nonzero().max()) + 1 if bool(present.any()) else 0
            maps = maps.narrow(dim + 1, 0, extent)
            mask = mask.narrow(dim, 0, extent)
    return maps.numpy().astype(np.float32, copy=False)


def save_region_map(prediction: ItemPrediction, out_dir: Path) -> Path:
    """``maps/<id>.npy``: :func:`region_map` of the item (the default evidence file)."""
    path = Path(out_dir) / MAPS / f"{prediction.id}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, region_map(prediction))
    return path


def write_predictions(
    predictor: Predictor,
    predictions: Iterable[ItemPrediction],
    out_dir: Path,
    bad: list[BadItem],
) -> tuple[int, list[Path]]:
    """Write ``scores.csv``, the plugin's evidence files, ``bad_items.json`` (when ``bad`` has
    any) and ``predictions.json`` while ``predictions`` is consumed; returns the number of items
    and the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = predictor.classes
    count = 0
    # an item or class name that is not valid Unicode (undecodable bytes, read as surrogates)
    # is written as its escape: the file stays UTF-8 and no item is lost
    with open(
        out_dir / SCORES, "w", newline="", encoding="utf-8", errors="backslashreplace"
    ) as file:
        writer = csv.writer(file)
        writer.writerow(["item", "id", *classes, "decision"])

        def scored() -> Iterator[ItemPrediction]:
            nonlocal count
            for prediction in predictions:
                decision = "|".join(predictor.decision(prediction.scores))
                values = [f"{v:.6g}" for v in prediction.scores.tolist()]
                writer.writerow([prediction.example.name, prediction.id, *values, decision])
                count += 1
                yield prediction

        stream = scored()
        files = list(predictor.plugin.write_evidence(stream, classes, out_dir))
        for _ in stream:  # a hook that stopped early still gets every score written
            pass
    files.insert(0, out_dir / SCORES)
    if bad:
        report = [{"item": b.name, "reason": b.reason} for b in bad]
        (out_dir / BAD).write_text(json.dumps(report, indent=2) + "\n")
        files.append(out_dir / BAD)
    entries = sorted({Path(f).relative_to(out_dir).parts[0] for f in files})
    manifest = {
        "checkpoint": str(predictor.run),
        "which": predictor.which,
        "items": count,
        "bad_items": len(bad),
        "entries": entries,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return count, files
