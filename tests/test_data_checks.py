"""What training says about the data before it trains: the split sizes and classes it found,
a training split with nothing to tell apart, an empty split; the data path a run records; the
order ``predict`` scores a file in."""

from __future__ import annotations

import csv
import json
import warnings

import pytest
import torch

from negev.engine import resolve_config, train
from negev.engine.checkpoint import RunWarning
from negev.errors import DataError
from negev.inference import Predictor

FAST = {"epochs": 1, "workers": 0, "plugin": {"buckets": 256, "hidden": 4}}
WORDS = ["good", "bad", "fine", "awful", "great", "poor"]


def _texts(path, labels, split=None):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label", *(["split"] if split else [])])
        for i, label in enumerate(labels):
            text = f"{WORDS[i % 6]} item {i}"
            writer.writerow([text, label, *([split[i]] if split else [])])
    return path


SMILES = ["CCO", "CCC", "c1ccccc1O", "CCN", "CCCl", "OCCO", "CC(=O)O", "CCBr"] * 4


def _molecule_run(tmp_path):
    """A molecule run in tmp_path/run trained on SMILES with a 0/1 'tox' task; the data path."""
    path = tmp_path / "m.csv"
    path.write_text("smiles,tox\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SMILES)))
    plugin, config = resolve_config(
        {}, {"modality": "molecule", "data": str(path), "out": str(tmp_path / "run"), **FAST}
    )
    train(plugin, config, quiet=True)
    return path


def _run(tmp_path, path, **options):
    options = {"modality": "text", "data": str(path), "out": str(tmp_path / "run"), **FAST,
               **options}  # fmt: skip
    return resolve_config({}, options)


def test_a_training_split_of_one_class_is_refused(tmp_path):
    plugin, config = _run(tmp_path, _texts(tmp_path / "one.csv", ["pos"] * 30))
    with pytest.raises(
        DataError, match=r"training split of .*one.csv holds only 'pos' \(2\d items"
    ):
        train(plugin, config, quiet=True)
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_a_validation_split_of_one_class_is_warned_of(tmp_path):
    from negev.engine.trainer import prepare_data

    labels = ["pos", "neg"] * 10 + ["pos"] * 4 + ["neg", "pos"] * 3
    split = ["train"] * 20 + ["val"] * 4 + ["test"] * 6
    plugin, config = _run(tmp_path, _texts(tmp_path / "v.csv", labels, split))
    with pytest.warns(RunWarning, match=r"the val split of .*v.csv holds only 'pos' \(4 items\)"):
        prepare_data(plugin, config, tmp_path / "run", check_classes=True)
    with warnings.catch_warnings():  # not training (no run directory): not checked
        warnings.simplefilter("error", RunWarning)
        prepare_data(plugin, config, None, check_classes=True)
    labels[20] = "neg"  # both classes in val: no warning
    plugin, config = _run(tmp_path, _texts(tmp_path / "v.csv", labels, split))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        prepare_data(plugin, config, tmp_path / "run", check_classes=True)


def test_a_multi_label_validation_split_without_a_class_to_rank_is_warned_of(tmp_path):
    from negev.engine.trainer import prepare_data

    smiles = SMILES[:24]
    split = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    tox = [str(i % 2) for i in range(16)] + ["1", "1", "", "1"] + ["0", "1"] * 2
    path = tmp_path / "m.csv"

    def write(sol):
        rows = zip(smiles, tox, sol, split, strict=True)
        path.write_text("smiles,tox,sol,split\n" + "".join(",".join(r) + "\n" for r in rows))
        return resolve_config({}, {"modality": "molecule", "data": str(path)})

    sol = [str(i % 3 == 0) for i in range(16)] + ["0", "0", "0", "0"] + ["1"] * 4
    with pytest.warns(RunWarning, match=r"the val split of .*m.csv holds no class with both"):
        prepare_data(*write(sol), tmp_path / "run", check_classes=True)
    sol[16] = "1"  # sol has both values in val now
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        prepare_data(*write(sol), tmp_path / "run", check_classes=True)


def test_an_empty_split_names_the_data_and_the_sizes(tmp_path):
    path = _texts(tmp_path / "s.csv", ["a", "b"] * 6, ["train", "test"] * 6)
    plugin, config = _run(tmp_path, path)
    with pytest.raises(DataError, match=r"the val split of .*s.csv is empty \(6 train, 0 val, 6 t"):
        train(plugin, config, quiet=True)


def test_training_says_what_it_read_and_records_the_data_path_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _texts(tmp_path / "two.csv", ["pos", "neg"] * 20)
    plugin, config = _run(tmp_path, "two.csv")
    train(plugin, config)
    err = capsys.readouterr().err
    assert "data: 28 train, 6 val, 6 test items; 2 classes: 'neg', 'pos'" in err
    saved = json.loads(next((tmp_path / "run").glob("checkpoint-*/config.json")).read_text())
    assert saved["config"]["data"] == str(tmp_path / "two.csv")  # evaluate reads it from anywhere


def test_predict_scores_a_file_in_its_order(tmp_path):
    _texts(tmp_path / "two.csv", ["pos", "neg"] * 20)
    plugin, config = _run(tmp_path, tmp_path / "two.csv")
    train(plugin, config, quiet=True)
    examples, bad = Predictor(tmp_path / "run").read_data(str(tmp_path / "two.csv"))
    assert [e.name for e in examples] == [f"two.csv:{line}" for line in range(2, 42)] and not bad


def test_predict_reads_a_text_file_without_labels(tmp_path):
    _texts(tmp_path / "two.csv", ["pos", "neg"] * 20)
    plugin, config = _run(tmp_path, tmp_path / "two.csv")
    train(plugin, config, quiet=True)
    texts = ["good item 0", "awful item 3", "a text never seen"]
    (tmp_path / "new.csv").write_text("text\n" + "".join(f"{t}\n" for t in texts))
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    predictor = Predictor(tmp_path / "run")
    reference = predictor.predict(texts).scores  # each text given literally, as with --input
    for name in ("new.csv", "new.jsonl"):
        examples, bad = predictor.read_data(str(tmp_path / name))
        assert [e.inputs for e in examples] == texts and not bad
        scores = torch.stack([p.scores for p in predictor.predictions(examples)])
        assert torch.allclose(scores, reference)
    (tmp_path / "gap.csv").write_text('text\ngood item 0\n""\n')  # an empty text: reported
    with pytest.raises(DataError, match=r"gap.csv:3: empty text"):
        predictor.read_data(str(tmp_path / "gap.csv"))


def test_predict_reads_a_molecule_file_without_labels(tmp_path):
    _molecule_run(tmp_path)
    new = ["c1ccccc1Cl", "OCC", "CCO"]
    (tmp_path / "new.csv").write_text("smiles\n" + "".join(f"{s}\n" for s in new))
    predictor = Predictor(tmp_path / "run")
    examples, bad = predictor.read_data(str(tmp_path / "new.csv"))
    assert [e.name for e in examples] == ["new.csv:2", "new.csv:3", "new.csv:4"] and not bad
    scores = torch.stack([p.scores for p in predictor.predictions(examples)])
    assert torch.allclose(scores, predictor.predict(new).scores)


def test_multi_task_data_warns_of_a_constant_task_and_refuses_all_constant(tmp_path):
    from negev.engine.trainer import prepare_data

    smiles = SMILES
    path = tmp_path / "m.csv"
    path.write_text("smiles,tox,sol\n" + "".join(f"{s},{i % 2},0\n" for i, s in enumerate(smiles)))
    plugin, config = resolve_config({}, {"modality": "molecule", "data": str(path)})
    with pytest.warns(RunWarning, match=r"class\(es\) 'sol' of .*m.csv are all positive or all"):
        prepare_data(plugin, config, tmp_path / "run", check_classes=True)
    prepare_data(plugin, config, None)  # not training: not checked
    path.write_text("smiles,tox,sol\n" + "".join(f"{s},1,0\n" for s in smiles))
    with pytest.raises(DataError, match="no class of .*m.csv has both positive and negative"):
        prepare_data(plugin, config, None, check_classes=True)


def test_resuming_on_other_data_says_so(tmp_path):
    first = _texts(tmp_path / "first.csv", ["pos", "neg"] * 20)
    other = _texts(tmp_path / "other.csv", ["neg", "pos"] * 20)
    plugin, config = _run(tmp_path, first)
    train(plugin, config, quiet=True)
    plugin, config = _run(tmp_path, other, epochs=2)
    with pytest.warns(RunWarning, match=r"trained on .*first.csv and resumes on .*other.csv"):
        train(plugin, config, quiet=True, resume=True)


def test_an_undefined_metric_is_written_as_null():
    """Strict JSON: a bare NaN (ROC-AUC of a split of one class) is refused by jq and browsers."""
    from negev.engine.checkpoint import metrics_json

    def refuse(constant):
        raise ValueError(constant)

    text = metrics_json({"accuracy": 1.0, "roc_auc": float("nan"), "items": 3})
    assert json.loads(text, parse_constant=refuse) == {"accuracy": 1.0, "roc_auc": None, "items": 3}


def test_evaluate_reads_an_external_file_with_the_model_classes(tmp_path):
    from negev.engine import evaluate

    _texts(tmp_path / "two.csv", ["pos", "neg"] * 20)
    plugin, config = _run(tmp_path, tmp_path / "two.csv")
    train(plugin, config, quiet=True)
    run = tmp_path / "run"
    only = _texts(tmp_path / "only.csv", ["pos"] * 6)  # one of the two classes: classes ['pos']
    result = evaluate(run, data=str(only))
    predictor = Predictor(run)
    examples, _ = predictor.read_data(str(only))
    decided = [predictor.decision(p.scores) for p in predictor.predictions(examples)]
    assert result.metrics["accuracy"] == pytest.approx(sum(d == ["pos"] for d in decided) / 6)
    third = _texts(tmp_path / "third.csv", ["pos", "neutral", "neg"])
    with pytest.raises(DataError, match=r"third.csv:3: label 'neutral' is not a class of the"):
        evaluate(run, data=str(third))
    result = evaluate(run, data=str(third), skip_bad=True)
    assert result.items == 2 and [b.name for b in result.bad] == ["third.csv:3"]


def test_evaluate_leaves_out_a_task_the_model_does_not_have(tmp_path):
    from negev.engine import evaluate

    path = _molecule_run(tmp_path)
    extra = tmp_path / "extra.csv"
    extra.write_text(
        "smiles,flag,tox\n" + "".join(f"{s},1,{i % 2}\n" for i, s in enumerate(SMILES))
    )
    with pytest.warns(RunWarning, match=r"class\(es\) 'flag' of the data are not classes"):
        with_flag = evaluate(tmp_path / "run", data=str(extra))
    assert with_flag.metrics == evaluate(tmp_path / "run", data=str(path)).metrics


def test_external_labels_are_mapped_to_the_model_classes():
    """Absent vs unknown: a class the file never names is a negative where classes are the
    labels found, and unknown where each class is a column (molecule tasks)."""
    from negev.engine.scoring import _as_model_classes
    from negev.plugins import DataSplits, Example

    data = DataSplits([], [], [], ["cat", "zebra"], True, [])
    items = [Example("a", None, (0,)), Example("b", None, (0, 1), unknown=())]
    kept, outside = None, None
    with pytest.warns(RunWarning, match=r"class\(es\) 'zebra' of the data are not classes"):
        kept, outside = _as_model_classes(items, data, ["cat", "dog"], True, columns=False)
    assert [(e.labels, e.unknown) for e in kept] == [((0,), ()), ((0,), ())] and not outside
    with pytest.warns(RunWarning):
        kept, _ = _as_model_classes(items, data, ["dog", "cat"], True, columns=True)
    assert [(e.labels, e.unknown) for e in kept] == [((1,), (0,)), ((1,), (0,))]
    single = DataSplits([], [], [], ["neg", "pos", "meh"], False, [])
    items = [Example("x", None, (1,)), Example("y", None, (2,)), Example("z", None, (0, 1))]
    kept, outside = _as_model_classes(items, single, ["pos", "neg"], False, columns=False)
    assert [(e.name, e.labels) for e in kept] == [("x", (0,))]
    assert [(b.name, b.reason) for b in outside] == [
        ("y", "label 'meh' is not a class of the model ('pos', 'neg')"),
        ("z", "2 labels ('neg', 'pos'); the model gives each item one class"),
    ]
