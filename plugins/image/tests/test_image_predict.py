"""The image plugin's predictions (wsolevaluation-style heatmaps) and its exported graph."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from negev.testing.runs import assert_onnx_matches, untrained_run
from negev_cli.app import app

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL = {"plugin": {"canvas": 48, "demo_train": 6, "demo_val": 2, "demo_test": 2, "width": 8,
                    "spatial": 2}}  # fmt: skip


def test_onnx_matches_the_model(tmp_path):
    examples = untrained_run(tmp_path / "run", "image", SMALL)  # WILDCAT, 4 maps per class
    assert_onnx_matches(tmp_path / "run", examples[:2], examples[2:7], tmp_path / "m.onnx")


def test_predict_writes_region_maps_and_heatmaps_at_the_image_size(tmp_path):
    untrained_run(tmp_path / "run", "image", SMALL)
    rng = np.random.default_rng(0)
    sizes = {"wide.png": (40, 72), "tall.jpg": (90, 30)}  # (H, W)
    for name, (height, width) in sizes.items():
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "-q"]
    items = [str(tmp_path / n) for n in (*sizes, "broken.png")]
    result = CliRunner().invoke(app, [*args, *(f"--input={i}" for i in items), "--skip-bad"])
    assert result.exit_code == 0, result.output
    ids = (out / "heatmaps" / "image_ids.txt").read_text().split()
    assert len(ids) == 2 and "broken.png" in (out / "bad_items.json").read_text()
    labels = dict(
        line.split(",") for line in (out / "heatmaps" / "class_labels.txt").read_text().split()
    )
    rows = (out / "scores.csv").read_text().splitlines()[1:]
    for row in rows:
        item, identifier, *scores, _ = row.split(",")
        heat = np.load(out / "heatmaps" / f"{identifier}.npy")
        name = item.rsplit("/", 1)[-1]
        assert heat.shape == sizes[name] and heat.dtype == np.float32
        assert heat.min() == 0 and heat.max() == 1  # min-max scaled, as the protocol's maps
        assert int(labels[identifier]) == int(np.argmax([float(s) for s in scores]))
        region = np.load(out / "maps" / f"{identifier}.npy")
        assert region.shape == (10, 12, 12)  # C digits, the 48 px input's grid at stride 4
