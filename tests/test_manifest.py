"""Manifest CSVs shared by the file-based plugins."""

from __future__ import annotations

import pytest

from negev.plugins import Example
from negev.plugins.manifest import read_manifest


def test_rows_labels_splits_and_bad_rows(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "path,labels,split,note\na.x,cat|dog,train,hi\nsub/b.x,,test,\nc.x,horse,val,\n"
        "d.x,cat,dev,\n/abs/e.x, dog ,val,\n./a.x,cat,test,\n"
    )
    manifest = read_manifest(path, ["cat", "dog"])
    assert [(r.name, r.labels, r.split) for r in manifest.rows] == [
        ("m.csv:2 (a.x)", (0, 1), "train"),
        ("m.csv:3 (sub/b.x)", (), "test"),
        ("m.csv:6 (/abs/e.x)", (1,), "val"),
    ]
    assert manifest.rows[0].file == tmp_path / "a.x" and str(manifest.rows[2].file) == "/abs/e.x"
    assert manifest.rows[0].fields["note"] == "hi"
    assert [(b.name, b.reason) for b in manifest.bad] == [
        ("m.csv:4 (c.x)", "unknown label 'horse' (classes: cat, dog)"),
        ("m.csv:5 (d.x)", "split must be train, val or test, got 'dev'"),
        ("m.csv:7 (./a.x)", "listed again (first at line 2)"),
    ]
    splits = manifest.splits([(r, Example(r.name, None, r.labels)) for r in manifest.rows])
    assert [len(splits.train), len(splits.val), len(splits.test)] == [1, 1, 1]
    assert splits.bad == manifest.bad and splits.multilabel
    assert read_manifest(path).classes == ["cat", "dog", "horse"]


def test_unlabelled_reading_needs_no_labels_column_and_ignores_one(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,split\na.x,test\nb.x,test\n")
    with pytest.raises(ValueError, match="no 'labels' column"):
        read_manifest(path)
    manifest = read_manifest(path, labelled=False)
    rows = [(r.name, r.labels) for r in manifest.rows]
    assert rows == [("m.csv:2 (a.x)", ()), ("m.csv:3 (b.x)", ())]
    path.write_text("path,labels\na.x,horse\n")  # a label outside the classes: not read
    manifest = read_manifest(path, ["cat"], labelled=False)
    assert [r.labels for r in manifest.rows] == [()] and not manifest.bad


def test_without_split_column_the_rows_are_cut_by_seed(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,labels\n" + "".join(f"f{i}.x,a\n" for i in range(20)))
    manifest = read_manifest(path)
    examples = [(r, Example(r.name, None, r.labels)) for r in manifest.rows]
    splits = manifest.splits(examples, seed=3)
    assert [len(splits.train), len(splits.val), len(splits.test)] == [14, 3, 3]
    names = {e.name for e in splits.train + splits.val + splits.test}
    assert len(names) == 20 and manifest.splits(examples, seed=3).test == splits.test


@pytest.mark.parametrize(
    ("text", "message"), [("", "no rows"), ("file,labels\nx,a\n", "no 'path' column")]
)
def test_unusable_files_are_refused(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_manifest(tmp_path / "m.csv")
