"""Using a trained run: negev.load / predict, negev predict, negev export against ONNX Runtime.

The modality is the example plugin's ``tokens`` (variable length, masks): its exported graph has
a dynamic batch and a dynamic region count. The other modalities' parity tests are in their
plugins' tests.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import negev
from negev.engine import DataError
from negev.inference.export import export, sample_inputs
from negev.inference.outputs import write_predictions
from negev.plugins.render import UniqueStems
from negev.testing.runs import assert_onnx_matches, onnx_outputs, untrained_run
from negev_cli.app import app
from negev_cli.inputs import refuse_data_files

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TOKENS = {"plugin": {"demo_size": 40}}
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _close(got: np.ndarray, expected: torch.Tensor) -> None:
    """Within 1e-4 relative (1e-6 absolute near 0)."""
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-4, atol=1e-6)


POOLINGS = {
    "max": {"pooling": "max"},
    "maxmin": {"pooling": "maxmin", "alpha": 1.0},
    "weldon": {"pooling": "weldon", "kmax": 0.3, "alpha": 1.0},
    "wildcat": {"pooling": "wildcat", "kmax": 0.3, "kmin": 2, "alpha": 0.7, "num_maps": 2},
    "wildcat-each-map": {
        "pooling": "wildcat", "kmax": 0.3, "kmin": 2, "alpha": 0.7, "num_maps": 3,
        "pool_each_map": True,
    },
    "lse": {"pooling": "lse", "beta_pos": 3.0, "beta_neg": -2.0, "alpha": 0.5},
}  # fmt: skip


@pytest.mark.parametrize("name", list(POOLINGS))
def test_onnx_matches_the_model_for_each_pooling(name, tmp_path):
    run = tmp_path / "run"
    examples = untrained_run(run, "tokens", {**POOLINGS[name], **TOKENS})
    assert negev.load(run).model.head.pool_each_map == ("pool_each_map" in POOLINGS[name])
    # traced on 4 items, run on 7 others: another batch size, another longest item
    checked = assert_onnx_matches(run, examples[:4], examples[10:17], tmp_path / "m.onnx")
    assert checked["tokens"].shape[1] != max(len(e.inputs) for e in examples[:4])


def test_bf16_trained_run_exports_and_matches(tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train", "-m", "tokens", "--epochs", "1", "--precision", "bf16", "--pooling", "weldon",
        "--set", "demo_size=60", "--out", str(run), "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        json.loads((run / "checkpoint-0001" / "config.json").read_text())["config"]["precision"]
        == "bf16"
    )
    onnx = tmp_path / "m.onnx"
    result = invoke("export", "--checkpoint", str(run), "--format", "onnx", "--out", str(onnx))
    assert result.exit_code == 0, result.output
    result = invoke("export", "--checkpoint", str(run), "--format", "onnx", "--out", str(onnx))
    assert result.exit_code == 1 and "--overwrite" in result.output
    predictor = negev.load(run)
    examples = predictor.read_data(None)[0]
    inputs = sample_inputs(predictor, examples[:9])
    scores, maps = onnx_outputs(onnx, inputs)
    with torch.no_grad():
        expected = predictor.model(inputs)  # the float32 model (autocast is a training choice)
    _close(scores, expected.scores)
    _close(maps, expected.maps)


def test_exported_program_and_torchscript(tmp_path):
    run = tmp_path / "run"
    examples = untrained_run(run, "tokens", {**POOLINGS["wildcat"], **TOKENS})
    predictor = negev.load(run)
    program = torch.export.load(export(predictor, tmp_path / "m.pt2", "exported", examples[:4]))
    inputs = sample_inputs(predictor, examples[10:17])
    with torch.no_grad():
        expected = predictor.model(inputs)
        scores, maps = program.module()(inputs=inputs)
    torch.testing.assert_close(scores, expected.scores)
    torch.testing.assert_close(maps, expected.maps)
    traced = torch.jit.load(export(predictor, tmp_path / "m.pt", "torchscript", examples[:4]))
    same = sample_inputs(predictor, examples[:4])  # traced: the shapes of the sample
    with torch.no_grad():
        scores, maps = traced(same)
        expected = predictor.model(same)
    torch.testing.assert_close(scores, expected.scores)
    torch.testing.assert_close(maps, expected.maps)


def test_export_refuses_what_it_cannot_do(tmp_path):
    run = tmp_path / "run"
    examples = untrained_run(run, "tokens", TOKENS)
    predictor = negev.load(run)
    with pytest.raises(ValueError, match="--format must be one of onnx, torchscript"):
        export(predictor, tmp_path / "m", "tflite", examples[:4])
    with pytest.raises(ValueError, match="two or more sample items"):
        export(predictor, tmp_path / "m.onnx", "onnx", examples[:1])


def test_predict_api_scores_items_in_order_like_the_model(tmp_path):
    run = tmp_path / "run"
    untrained_run(run, "tokens", {**POOLINGS["weldon"], **TOKENS})
    predictor = negev.load(run, device="cpu")
    items = ["3 1 2 7 5", "1 2", "4 4 4 4 4 4 4 4 1 2 9", "1 2"]
    scores, maps = predictor.predict(items, batch_size=3)
    assert scores.shape == (4, 2) and [m.shape for m in maps] == [(2, 11)] * 3 + [(2, 2)]
    for item, row, item_maps in zip(items, scores, maps, strict=True):
        batch = predictor.plugin.collate([predictor.plugin.read_input(item)])
        with torch.no_grad():
            alone = predictor.model(batch)  # one item alone: no padding
        torch.testing.assert_close(row, alone.scores[0])
        n = len(item.split())
        torch.testing.assert_close(item_maps[:, :n], alone.maps[0])
        assert torch.isnan(item_maps[:, n:]).all()  # regions the item does not have
    torch.testing.assert_close(scores[1], scores[3])
    with pytest.raises(DataError, match=r"item 2: an item is a path or a literal, got float nan"):
        predictor.predict(["1 2", float("nan")])  # a pandas column's missing value
    with pytest.raises(TypeError, match=r"got the string '3 1 2': pass \[item\] for one"):
        predictor.predict("3 1 2")  # not three items "3", " ", "1", ...
    positive = [
        c for c, value in zip(predictor.classes, scores[0].tolist(), strict=True) if value > 0
    ]
    top = [predictor.classes[int(scores[0].argmax())]]
    assert predictor.decision(scores[0]) == (positive if predictor.multilabel else top)
    with pytest.raises(ValueError, match=r"one item's scores, shape \(2,\), got \(4, 2\)"):
        predictor.decision(scores)
    first = predictor.explain("3 1 2", tmp_path / "why")
    second = predictor.explain("1 2 9", tmp_path / "why", overwrite=True)  # beside the first
    assert set(first.files) <= set((tmp_path / "why").iterdir()) and second.files


def test_scores_csv_escapes_names_that_are_not_valid_unicode(tmp_path):
    """An item named by undecodable bytes (a file name, read as surrogates) is scored and
    written under its escaped name; the file stays UTF-8."""
    run = tmp_path / "run"
    untrained_run(run, "tokens", TOKENS)
    predictor = negev.load(run, device="cpu")
    item = dataclasses.replace(predictor.plugin.read_input("3 1 2"), name="caf\udce9.txt")
    write_predictions(predictor, predictor.predictions([item]), tmp_path / "out", [])
    rows = _rows(tmp_path / "out" / "scores.csv")
    assert [row["item"] for row in rows] == ["caf\\udce9.txt"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_predict_cli_writes_scores_maps_and_bad_items(tmp_path):
    run = tmp_path / "run"
    untrained_run(run, "tokens", TOKENS)
    data = tmp_path / "new.csv"
    data.write_text("tokens,labels\n3 1 2 7 5,\n1 2 9 9,alpha\nnot numbers,\n1 2,\n")
    out = tmp_path / "out"
    result = invoke("predict", "--checkpoint", str(run), "--data", str(data), "--out", str(out))
    assert result.exit_code == 1 and "--skip-bad" in result.output
    assert not out.exists()
    args = ["predict", "--checkpoint", str(run), "--data", str(data), "--out", str(out)]
    result = invoke(*args, "--skip-bad", "-q")
    assert result.exit_code == 0, result.output
    rows = _rows(out / "scores.csv")
    assert list(rows[0]) == ["item", "id", "alpha", "beta", "decision"]
    assert len(rows) == 3
    lengths = {"new.csv:2": 5, "new.csv:3": 4, "new.csv:5": 2}
    assert sorted(row["item"] for row in rows) == sorted(lengths)
    for row in rows:
        maps = np.load(out / "maps" / f"{row['id']}.npy")
        assert maps.shape == (2, lengths[row["item"]]) and maps.dtype == np.float32
        decided = [c for c in ("alpha", "beta") if float(row[c]) > 0]
        assert row["decision"] == "|".join(decided)
    bad = json.loads((out / "bad_items.json").read_text())
    assert [b["item"] for b in bad] == ["new.csv:4"] and "'not'" in bad[0]["reason"]

    result = invoke(*args, "--skip-bad")
    assert result.exit_code == 1 and "--overwrite" in result.output
    (out / "mine.txt").write_text("kept")
    stale = out / "maps" / "stale.npy"
    stale.write_bytes(b"")
    result = invoke("predict", "--checkpoint", str(run), "-i", "1 2", "--out", str(out),
                    "--overwrite", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(_rows(out / "scores.csv")) == 1
    assert not stale.exists() and not (out / "bad_items.json").exists()
    assert (out / "mine.txt").read_text() == "kept"  # not a file the prediction wrote
    for command in (["predict", "--out", str(out), "--overwrite"], ["explain"]):  # a data file
        result = invoke(*command, "--checkpoint", str(run), "-i", str(data))
        assert result.exit_code == 1 and f"--input {data} is a data file" in result.output
        assert "--data" in result.output
    assert (out / "scores.csv").exists()  # refused before the previous prediction was removed
    refuse_data_files(["a review far longer than a file name may be " * 10 + "see a.csv"], "x")


def test_predict_blames_the_item_that_fails_to_load(tmp_path):
    run = tmp_path / "run"
    untrained_run(run, "tokens", TOKENS)
    predictor = negev.load(run)
    good = predictor.read_inputs(["1 2", "3 4 5", "6 7"])[0]
    broken = predictor.plugin.read_input("1 2")
    broken.name, broken.inputs = "broken", "not a list"  # load_item fails on it
    bad = []
    done = list(predictor.predictions([good[0], broken, *good[1:]], batch_size=2, bad=bad))
    assert sorted(p.example.name for p in done) == ["1 2", "3 4 5", "6 7"]
    assert [b.name for b in bad] == ["broken"]
    with pytest.raises(DataError, match="broken.*--skip-bad"):
        list(predictor.predictions([good[0], broken], batch_size=2))


def test_unique_stems_sanitise_and_never_collide():
    stems = UniqueStems()
    names = ["a/b.png", "a_b.png", "A_B.PNG", "../../etc/passwd", "", "x" * 50, "x" * 60, "a/b.png"]
    got = [stems(n) for n in names]
    assert len({g.lower() for g in got}) == len(got)
    assert all(re.fullmatch(r"[\w-]+", g) for g in got)
    assert got[-1] == f"{got[0]}-2"  # the same name again


def test_readme_example_runs(tmp_path, monkeypatch):
    """The README's "Use a trained model" Python example, run as it is written."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use a trained model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "train", "-m", "tokens", "--epochs", "1", "--set", "demo_size=60", "--out", "runs/tokens",
        "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["scores"].shape[0] == 2
