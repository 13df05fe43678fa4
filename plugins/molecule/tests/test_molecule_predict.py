"""The molecule plugin's atom scores and its exported graph (the tensors after RDKit)."""

from __future__ import annotations

import json

import pytest

import negev
from negev.inference.outputs import write_predictions
from negev.testing.runs import assert_onnx_matches, untrained_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMILES = ["CCO", "CCCl", "Oc1ccccc1", "Oc1ccc(Cl)cc1", "CC(=O)O", "c1ccccc1N", "OCCO", "ClCCl",
          "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]  # fmt: skip


def _run(tmp_path, encoder: str) -> list:
    data = tmp_path / "mols.csv"
    data.write_text("smiles,active\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SMILES)))
    small = {"hidden": 8, **({"buckets": 256} if encoder == "hashed" else {})}
    options = {"data": str(data), "plugin": {"encoder": encoder, **small}}
    return untrained_run(tmp_path / "run", "molecule", options)


@pytest.mark.parametrize("encoder", ["hashed", "mpnn"])
def test_onnx_matches_the_model(encoder, tmp_path):
    examples = _run(tmp_path, encoder)
    assert_onnx_matches(tmp_path / "run", examples[:3], examples[3:9], tmp_path / "m.onnx")


def test_atoms_jsonl_holds_each_atoms_evidence(tmp_path):
    _run(tmp_path, "hashed")
    predictor = negev.load(tmp_path / "run")
    examples, _ = predictor.read_inputs(["Oc1ccc(Cl)cc1", "CCO"])
    write_predictions(predictor, predictor.predictions(examples), tmp_path / "out", [])
    lines = [
        json.loads(line) for line in (tmp_path / "out" / "atoms.jsonl").read_text().splitlines()
    ]
    assert [line["atoms"] for line in lines] == [["O", *"CCCC", "Cl", "C", "C"], list("CCO")]
    for line in lines:
        for scores in line["scores"].values():
            assert len(scores["for"]) == len(scores["against"]) == len(line["atoms"])
            assert all(a is None or b is None or b <= a
                       for a, b in zip(scores["for"], scores["against"], strict=True))  # fmt: skip
