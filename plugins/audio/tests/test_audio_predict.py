"""The audio plugin's frame scores and events, and its exported graph (a dynamic clip length)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import negev
from negev.inference.outputs import write_predictions
from negev.testing.runs import assert_onnx_matches, untrained_run
from negev_audio.plugin import active_frames

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL = {"plugin": {"demo_train": 6, "demo_val": 2, "demo_test": 2, "width": 8, "blocks": 2}}


def test_onnx_matches_the_model(tmp_path):
    examples = untrained_run(tmp_path / "run", "audio", SMALL)
    checked = assert_onnx_matches(
        tmp_path / "run", examples[:2], examples[2:7], tmp_path / "m.onnx"
    )
    assert len(set(checked["lengths"].tolist())) > 1


def test_events_are_the_runs_of_active_frames(tmp_path):
    examples = untrained_run(tmp_path / "run", "audio", SMALL)
    predictor = negev.load(tmp_path / "run")
    out = tmp_path / "out"
    done = list(predictor.predictions(examples[:3]))
    write_predictions(predictor, iter(done), out, [])
    with open(out / "events.csv", newline="") as file:
        events = list(csv.DictReader(file))
    hop = predictor.plugin.hop / predictor.plugin.sample_rate
    for prediction in done:
        frames = np.load(out / "maps" / f"{prediction.id}.npy")
        assert frames.shape[0] == len(predictor.classes) and not np.isnan(frames).any()
        active = active_frames(torch.from_numpy(frames), prediction.scores, 0.5).numpy()
        for c, name in enumerate(predictor.classes):
            mine = [e for e in events if e["id"] == prediction.id and e["class"] == name]
            covered = sum(float(e["offset"]) - float(e["onset"]) for e in mine)
            # each active frame spans one hop (the first and last are cut at 0 and the end)
            assert covered == pytest.approx(active[c].sum() * hop, abs=2 * hop)
            assert all(float(e["onset"]) < float(e["offset"]) for e in mine)


def test_events_csv_escapes_a_class_name_that_is_not_valid_unicode(tmp_path):
    """A label read from undecodable bytes travels as a lone surrogate: events.csv writes it as
    its escape (valid UTF-8), as the other plugins' files do, instead of failing midway."""
    examples = untrained_run(tmp_path / "run", "audio", SMALL)
    predictor = negev.load(tmp_path / "run")
    done = list(predictor.predictions(examples[:3]))
    classes = [f"\ud800{name}" for name in predictor.classes]
    (tmp_path / "out").mkdir()
    predictor.plugin.write_evidence(iter(done), classes, tmp_path / "out")
    with open(tmp_path / "out" / "events.csv", newline="", encoding="utf-8") as file:
        events = list(csv.DictReader(file))
    assert events and all(e["class"].startswith("\\ud800") for e in events)
