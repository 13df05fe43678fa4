"""ERASER metrics (IOU F1, comprehensiveness, sufficiency) and its files, against values worked
out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from negev.nn import EvidenceHead, WildcatPool
from negev.plugins import Example
from negev_text.eraser import faithfulness, iou_f1, read_eraser, to_jsonl, top_k_spans
from negev_text.plugin import TextPlugin


def test_top_k_spans_are_runs_of_the_best_tokens():
    assert top_k_spans(np.array([3.0, 1.0, 0.0, 2.0, 2.5]), 3) == [(0, 1), (3, 5)]
    assert top_k_spans(np.array([1.0, 1.0]), 1) == [(0, 1)]  # ties: the earlier token


def test_iou_f1_worked_by_hand():
    # text 1: truth 0-4; predicted 0-2 (IoU 2/4 = 0.5, a match) and 3-4 (1/4): P 1/2, R 1
    # text 2: truth 2-5 and 7-8; predicted 2-5 (a match): P 1, R 1/2
    # macro: P = R = 3/4 -> F1 3/4
    truth = [[(0, 4)], [(2, 5), (7, 8)]]
    predicted = [[(0, 2), (3, 4)], [(2, 5)]]
    assert iou_f1(truth, predicted) == pytest.approx(0.75)
    assert iou_f1(truth, [[], []]) == 0.0


def test_comprehensiveness_and_sufficiency_of_a_four_token_text():
    # p(decision | kept tokens) = 0.2 + 0.6 [token 0 kept] + 0.2 [token 1 kept]; evidence ranks
    # tokens 0, 3, 1, 2. Top 25 %: {0}; top 50 %: {0, 3}.
    def probability(items):
        return np.array([0.2 + 0.6 * (0 in kept) + 0.2 * (1 in kept) for _, kept in items])

    evidence = [np.array([3.0, 1.0, 0.0, 2.0])]
    # removing {0} or {0, 3}: 1 -> 0.4; keeping only them: 1 -> 0.8
    result = faithfulness(probability, [4], evidence, fractions=(0.25, 0.5))
    assert result == pytest.approx({"comprehensiveness": 0.6, "sufficiency": 0.2})
    # ERASER's bins 1, 5, 10, 20 % of 4 tokens remove / keep floor(k n) = 0 tokens:
    # comprehensiveness (0 + 0 + 0 + 0 + 0.6) / 5; sufficiency (0.8 * 4 + 0.2) / 5
    result = faithfulness(probability, [4], evidence)
    assert result == pytest.approx({"comprehensiveness": 0.12, "sufficiency": 0.68})


def write_eraser(root, with_docs_jsonl=False):
    (root / "docs").mkdir(parents=True)
    if with_docs_jsonl:
        (root / "docs.jsonl").write_text(json.dumps({"docid": "d1", "document": "a b c d"}) + "\n")
    else:
        (root / "docs" / "d1").write_text("a b\nc d\n")
    (root / "docs" / "d2").write_text("the film was great\n")
    annotations = [
        {"annotation_id": "x", "classification": "POS", "docids": ["d1"],
         "evidences": [[{"docid": "d1", "start_token": 1, "end_token": 3}]]},
        {"annotation_id": "y", "classification": "NEG",
         "evidences": [[{"docid": "d2", "start_token": 3, "end_token": 4}],
                       [{"docid": "d2", "start_token": 0, "end_token": 1}]]},
    ]  # fmt: skip
    (root / "test.jsonl").write_text("".join(json.dumps(a) + "\n" for a in annotations))


@pytest.mark.parametrize("with_docs_jsonl", [False, True])
def test_read_eraser_gives_character_spans_of_the_evidence(tmp_path, with_docs_jsonl):
    write_eraser(tmp_path, with_docs_jsonl)
    records = read_eraser(tmp_path, "test")
    assert records[0] == {"id": "x", "text": "a b c d", "label": "POS",
                          "positive_spans": [(2, 5)]}  # fmt: skip
    assert records[1]["text"] == "the film was great"
    assert records[1]["positive_spans"] == [(0, 3), (13, 18)]
    assert to_jsonl(tmp_path, "test", tmp_path / "out.jsonl") == 2
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert first["positive_spans"] == [[2, 5]]


def test_read_eraser_names_bad_lines(tmp_path):
    write_eraser(tmp_path)
    (tmp_path / "val.jsonl").write_text('{"classification": "POS"}\n')
    with pytest.raises(ValueError, match="val.jsonl:1: not an ERASER annotation"):
        read_eraser(tmp_path, "val")
    bad = {"classification": "POS", "evidences": [[{"docid": "d1", "start_token": 3,
                                                     "end_token": 9}]]}  # fmt: skip
    (tmp_path / "val.jsonl").write_text("\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="val.jsonl:2: evidence"):
        read_eraser(tmp_path, "val")
    with pytest.raises(ValueError, match="missing document"):
        (tmp_path / "val.jsonl").write_text(json.dumps({**bad, "docids": ["zz"]}) + "\n")
        read_eraser(tmp_path, "val")


class WindowModel(torch.nn.Module):
    """The text plugin's conv encoder + a WELDON head, untrained: a real model to feed."""

    def __init__(self, plugin: TextPlugin):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = plugin.build_encoder({"plugin": {}})
        self.head = EvidenceHead(self.encoder.out_channels, 1, pool=WildcatPool(0.2, 0.2, 1.0))

    def forward(self, inputs):
        return self.head(*self.encoder(inputs))


def test_text_plugin_faithfulness_matches_a_direct_loop():
    plugin = TextPlugin()
    plugin.load_data(None, {"plugin": {"demo_size": 40}})
    plugin.load_state({"vocabulary": ["<pad>", "<unk>", "good", "food", "not", "bad", "the"]})
    model = WindowModel(plugin).eval()
    texts = ["the food was good", "not good", "bad bad food"]
    examples = [Example(t, t, ()) for t in texts]
    with torch.no_grad():
        out = model(plugin.collate(examples))
    maps = list(out.maps)
    result = plugin.evidence_metrics(examples, maps, ["positive"], out.scores, model=model)

    def p(text: str, sign: float) -> float:  # the decision's probability, computed directly
        with torch.no_grad():
            score = model(plugin.collate([Example(text, text, ())])).scores[0, 0]
        return float(torch.sigmoid(sign * score))

    comp, suff = [], []
    for text, item, score in zip(texts, maps, out.scores[:, 0], strict=True):
        words = text.split()
        sign = 1.0 if score > 0 else -1.0
        order = np.argsort(-sign * plugin.token_evidence(len(words), item[0]), kind="stable")
        for fraction in (0.01, 0.05, 0.1, 0.2, 0.5):
            top = set(order[: int(fraction * len(words))].tolist())
            comp.append(p(text, sign) - p(" ".join(w for i, w in enumerate(words)
                                                    if i not in top), sign))  # fmt: skip
            suff.append(p(text, sign) - p(" ".join(w for i, w in enumerate(words) if i in top),
                                          sign))  # fmt: skip
    assert result["comprehensiveness"] == pytest.approx(np.mean(comp), abs=1e-6)
    assert result["sufficiency"] == pytest.approx(np.mean(suff), abs=1e-6)
    assert "comprehensiveness" not in plugin.evidence_metrics(examples, maps, ["positive"])
