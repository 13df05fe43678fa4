"""The bags plugin's instance scores and its exported graph (a dynamic instance count)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import negev
from negev.inference.outputs import write_predictions
from negev.plugins.render import UniqueStems
from negev.testing.runs import assert_onnx_matches, untrained_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL = {"plugin": {"demo_train": 6, "demo_val": 2, "demo_test": 2, "demo_min": 5,
                    "demo_max": 40, "demo_dim": 8}}  # fmt: skip


@pytest.mark.parametrize(
    "pooling", ["wildcat", "lse", "meanwildcat", "mimean", "abmil", "gabmil", "dsmil"]
)
def test_onnx_matches_the_model(pooling, tmp_path):
    examples = untrained_run(tmp_path / "run", "bags", {"pooling": pooling, **SMALL})
    assert_onnx_matches(tmp_path / "run", examples[:3], examples[3:9], tmp_path / "m.onnx")


def test_instance_scores_per_bag(tmp_path):
    examples = untrained_run(tmp_path / "run", "bags", SMALL)
    predictor = negev.load(tmp_path / "run")
    out = tmp_path / "out"
    write_predictions(predictor, predictor.predictions(examples[:5], batch_size=2), out, [])
    stems = UniqueStems()
    for example in examples[:5]:
        identifier = stems(example.name)
        features, _ = example.inputs.load()
        maps = np.load(out / "maps" / f"{identifier}.npy")
        assert maps.shape == (len(predictor.classes), features.shape[0])
        with open(out / "instances" / f"{identifier}.csv", newline="") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == features.shape[0]
        column = [float(r[f"score_{predictor.classes[0]}"]) for r in rows]
        np.testing.assert_allclose(column, maps[0], rtol=1e-5)
