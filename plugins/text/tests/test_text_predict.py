"""The text plugin's token scores and its exported graph (a dynamic text length)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import negev
from negev.inference.outputs import write_predictions
from negev.testing.runs import assert_onnx_matches, untrained_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL = {"plugin": {"demo_size": 30, "buckets": 1024, "hidden": 8}}


@pytest.mark.parametrize(
    ("encoder", "pooling"), [("hashed", "wildcat"), ("conv", "wildcat"), ("hashed", "sumwildcat")]
)
def test_onnx_matches_the_model(encoder, pooling, tmp_path):
    """The hashed table and the row weights random (they start at 0 and 1), so that every window
    scores apart; sumwildcat: the windows over their text's TF-IDF length (tfidf_norm), its
    rows sorted and counted in the graph."""
    small = SMALL["plugin"] if encoder == "hashed" else {"demo_size": 30}
    options = {"pooling": pooling, "kmax": 0.3, "alpha": 0.7,
               "plugin": {**small, "encoder": encoder}}  # fmt: skip

    def init(model: torch.nn.Module) -> None:
        with torch.no_grad():
            torch.nn.init.normal_(model.encoder.embed.weight)
            if getattr(model.encoder, "row_norm", False):
                weights = torch.rand(model.encoder.row_weights.shape) * 3
                weights[torch.rand(weights.shape) < 0.3] = 0.0
                model.encoder.set_row_weights(weights, 2.5)

    examples = untrained_run(tmp_path / "run", "text", options, init)
    assert_onnx_matches(tmp_path / "run", examples[:3], examples[3:10], tmp_path / "m.onnx")


def test_tokens_jsonl_holds_each_tokens_evidence(tmp_path):
    untrained_run(tmp_path / "run", "text", {"pooling": "weldon", **SMALL})
    predictor = negev.load(tmp_path / "run")
    texts = ["the food was great", "not great , not bad at all ."]
    examples, _ = predictor.read_inputs(texts)
    write_predictions(predictor, predictor.predictions(examples), tmp_path / "out", [])
    lines = [
        json.loads(line) for line in (tmp_path / "out" / "tokens.jsonl").read_text().splitlines()
    ]
    assert [line["item"] for line in lines] == [e.name for e in examples]
    for text, line in zip(texts, lines, strict=True):
        assert line["tokens"] == text.split()
        assert [text[s:e] for s, e in line["spans"]] == line["tokens"]
        for name in predictor.classes:
            weights = line["scores"][name]
            assert len(weights) == len(line["tokens"]) and np.isfinite(weights).all()
