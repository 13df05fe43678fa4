"""Every dataset reader against bad files: byte-order marks, bytes that are not UTF-8, over-long
fields, JSON lines that are not objects, items over the size limits, and hypothesis-generated
malformed CSV / JSONL / SDF / XML. Each outcome is a dataset whose bad items name the file (and
line), or a ValueError naming the file; never another exception."""

from __future__ import annotations

import json
import re
import struct
import wave
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from rdkit import Chem

from negev.plugins.manifest import read_manifest
from negev.plugins.tables import FIELD_LIMIT
from negev_audio.data import read_csv as read_audio_csv
from negev_bags.readers import read_bag_csv, read_mil_table
from negev_image.images import read_image
from negev_image.readers import read_csv as read_image_csv
from negev_image.readers import read_voc
from negev_molecule import data as molecules
from negev_text import data as texts
from negev_text.options import TextOptions
from tests.test_tables import LATIN_1

BOM = b"\xef\xbb\xbf"
LONG = b"y" * (FIELD_LIMIT + 1)


def _molecule_csv(path: Path):
    return molecules.load(str(path), {"plugin": {}})


def _text(path: Path):
    return texts.load(path, TextOptions())


def _bags(path: Path):
    return read_bag_csv(path)


def _png(path: Path, size: int = 4) -> None:
    Image.new("RGB", (size, size), (200, 30, 30)).save(path)


def _folder(tmp_path: Path) -> Path:
    """Files the CSVs below name: images and bags."""
    for name in ("a.png", "b.png", "c.png"):
        _png(tmp_path / name)
    for name in ("a.npy", "b.npy", "c.npy"):
        np.save(tmp_path / name, np.ones((3, 2), dtype=np.float32))
    return tmp_path


# (reader, header, three good rows): the BOM, bad-byte and long-field cases of every CSV reader
CSV_READERS = {
    "manifest": (read_manifest, b"path,labels", [b"a.png,cat", b"b.png,dog", b"c.png,cat"]),
    "image": (read_image_csv, b"path,labels", [b"a.png,cat", b"b.png,dog", b"c.png,cat"]),
    "molecule": (_molecule_csv, b"smiles,active", [b"CCO,1", b"c1ccccc1O,0", b"CCN,1"]),
    "text": (_text, b"text,label", [b"good food,pos", b"bad room,neg", b"fine,pos"]),
    "bags": (_bags, b"bag,label", [b"a.npy,1", b"b.npy,0", b"c.npy,1"]),
}


def _count(result) -> int:
    if hasattr(result, "rows"):
        return len(result.rows)
    return len(result.train) + len(result.val) + len(result.test)


@pytest.mark.parametrize("reader", sorted(CSV_READERS))
def test_every_csv_reader_accepts_a_byte_order_mark(tmp_path, reader):
    read, header, rows = CSV_READERS[reader]
    path = _folder(tmp_path) / "data.csv"
    path.write_bytes(BOM + b"\n".join([header, *rows]) + b"\n")
    result = read(path)
    assert result.bad == [] and _count(result) == 3


@pytest.mark.parametrize("reader", sorted(CSV_READERS))
def test_every_csv_reader_names_the_line_of_bad_bytes_and_long_fields(tmp_path, reader):
    read, header, rows = CSV_READERS[reader]
    path = _folder(tmp_path) / "data.csv"
    bad_byte = rows[1].replace(b",", b"\xff,", 1)
    long_field = LONG + rows[2][rows[2].index(b",") :]
    path.write_bytes(b"\n".join([header, rows[0], bad_byte, long_field]) + b"\n")
    result = read(path)
    reasons = {b.name.partition(" ")[0]: b.reason for b in result.bad}
    first = repr(header.split(b",")[0].decode())  # the column the bad cells are in
    too_long = (  # the text plugin's limit on a text is its option max_chars
        f"text of {FIELD_LIMIT + 1} characters, over the limit of max_chars={FIELD_LIMIT} (a "
        "plugin option)" if reader == "text" else
        f"column {first} has {FIELD_LIMIT + 1} characters, over the limit of {FIELD_LIMIT}"
    )  # fmt: skip
    bad_byte = f"not UTF-8: byte 0xff in column {first} {LATIN_1}"
    assert reasons == {"data.csv:3": bad_byte, "data.csv:4": too_long}
    assert _count(result) == 1


def test_the_instance_table_accepts_a_bom_and_names_bad_lines(tmp_path):
    path = tmp_path / "musk.csv"
    path.write_bytes(BOM + b"1,0,0.5,0.2\n1,0,0.1,0.3\n2,1,0.9,\xff\n2,1,0.8,0.7\n3\n")
    result = read_mil_table(path)
    assert [(b.name, b.reason) for b in result.bad] == [
        ("musk.csv:3", f"not UTF-8: byte 0xff in field 4 {LATIN_1}"),
        ("musk.csv:5", "1 fields: no bag or label column (columns 1, 2)"),
    ]
    assert _count(result) == 2


def test_jsonl_with_a_bom_and_lines_that_are_not_objects(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [
        b'{"text": "good food", "label": "pos"}',
        b'["good", "pos"]',
        b'"just a string"',
        b"[" * 5000 + b"]" * 5000,
        b'{"text": "bad room", "label": "neg", "n": ' + b"9" * 5000 + b"}",
        b'{"text": "bad \xff room", "label": "neg"}',
        b'{"text": "ok", "label": "neg"}',
    ]
    path.write_bytes(BOM + b"\n".join(lines) + b"\n")
    result = texts.load(path, TextOptions())
    assert [b.name for b in result.bad] == [f"t.jsonl:{n}" for n in range(2, 7)]
    assert result.bad[0].reason == "not a JSON object but a list"
    assert _count(result) == 2


def _bomb(path: Path, side: int = 100_000) -> None:
    """A PNG whose header claims side x side pixels (a decompression bomb), and no pixel."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def test_images_over_the_pixel_limit_are_bad_items_naming_the_file(tmp_path):
    _folder(tmp_path)
    _bomb(tmp_path / "bomb.png")
    _png(tmp_path / "big.png", 20)
    (tmp_path / "m.csv").write_text("path,labels\nbomb.png,cat\nbig.png,dog\na.png,cat\n")
    result = read_image_csv(tmp_path / "m.csv", max_pixels=100)
    assert [b.name for b in result.bad] == ["m.csv:2 (bomb.png)", "m.csv:3 (big.png)"]
    assert "too many pixels" in result.bad[0].reason
    limit = "20 x 20 pixels, over the limit of max_pixels=100 (a plugin option)"
    assert result.bad[1].reason == limit
    assert _count(result) == 1
    with pytest.raises(ValueError, match=r"bomb\.png: too many pixels"):
        read_image(tmp_path / "bomb.png")


def test_molecules_texts_clips_and_bags_over_their_limits_are_bad_items(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\ngood food,pos\n" + "x" * 50 + ",neg\n")
    result = texts.load(tmp_path / "t.csv", TextOptions(max_chars=20))
    assert [(b.name, b.reason) for b in result.bad] == [
        ("t.csv:3", "text of 50 characters, over the limit of max_chars=20 (a plugin option)")
    ]
    for name, seconds in (("short.wav", 1), ("long.wav", 3)):
        with wave.open(str(tmp_path / name), "wb") as clip:
            clip.setnchannels(1)
            clip.setsampwidth(2)
            clip.setframerate(8000)
            samples = (np.sin(np.arange(8000 * seconds) / 5) * 10000).astype("<i2")
            clip.writeframes(samples.tobytes())
    (tmp_path / "a.csv").write_text("path,labels\nshort.wav,beep\nlong.wav,beep\n")
    result = read_audio_csv(tmp_path / "a.csv", 8000, max_seconds=2)
    assert [(b.name, b.reason) for b in result.bad] == [
        ("a.csv:3 (long.wav)", "3.0 s long, over the limit of max_seconds=2 (a plugin option)")
    ]
    np.save(tmp_path / "big.npy", np.ones((7, 2), dtype=np.float32))
    np.save(tmp_path / "small.npy", np.ones((3, 2), dtype=np.float32))
    (tmp_path / "b.csv").write_text("bag,label\nbig.npy,1\nsmall.npy,0\n")
    result = read_bag_csv(tmp_path / "b.csv", max_instances=5)
    assert [(b.name, b.reason) for b in result.bad] == [
        ("b.csv:2 (big.npy)", "7 instances, over the limit of max_instances=5 (a plugin option)")
    ]


# -- fuzzing ---------------------------------------------------------------------------------


def _outcome(read, path: Path) -> None:
    """``read(path)`` gives a dataset whose bad items name the file, or a ValueError naming it."""
    try:
        result = read(path)
    except ValueError as exc:
        assert path.name in str(exc), f"{type(exc).__name__}: {exc}"
        return
    for item in result.bad:
        assert re.match(rf"({re.escape(path.name)}|Annotations/|JPEGImages/)", item.name), item


def _cells(values: list[str]):
    return st.one_of(
        st.sampled_from([v.encode() for v in values]),
        st.text(max_size=8).map(str.encode),
        st.binary(max_size=4),
        st.sampled_from([b'"', b'"a,"b', b"\x00", b"\r", LONG]),
    )


def csv_files(columns: list[str], values: list[str], header: bool = True):
    """CSV bytes: a header of some of ``columns`` (and a stray name), rows of cells that are
    good values, any text, any bytes, quotes, NULs or a field over the limit; ragged rows, a
    byte-order mark, CRLF line ends."""
    names = st.lists(st.sampled_from([*columns, "other"]), min_size=1, max_size=4, unique=True)
    rows = st.lists(st.lists(_cells(values), max_size=5), max_size=6)
    return st.tuples(names, rows, st.booleans(), st.sampled_from([b"\n", b"\r\n"])).map(
        lambda parts: (
            (BOM if parts[2] else b"")
            + parts[3].join(
                ([",".join(parts[0]).encode()] if header else []) + [b",".join(r) for r in parts[1]]
            )
        )
    )


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(csv_files(["path", "labels", "split"], ["a.png", "cat", "cat|dog", "train", "val", ""]))
def test_fuzz_manifest(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("manifest") / "m.csv"
    path.write_bytes(content)
    _outcome(read_manifest, path)


@FUZZ
@given(csv_files(["smiles", "active", "tox", "split"], ["CCO", "C1CC", "0", "1", "test", ""]))
def test_fuzz_molecule_csv(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("molecule") / "m.csv"
    path.write_bytes(content)
    _outcome(_molecule_csv, path)


@FUZZ
@given(csv_files(["text", "label", "split", "positive_spans"], ["good", "pos", "0:2", "1:x"]))
def test_fuzz_text_csv(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("text") / "t.csv"
    path.write_bytes(content)
    _outcome(_text, path)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
json_lines = st.one_of(
    st.fixed_dictionaries(
        {}, optional={k: json_values | st.just("good") for k in ("text", "label", "split")}
    ).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=12),
    st.just(b'{"text": "' + LONG + b'", "label": "pos"}'),
)


@FUZZ
@given(st.lists(json_lines, max_size=6), st.booleans())
def test_fuzz_text_jsonl(tmp_path_factory, lines, bom):
    path = tmp_path_factory.mktemp("jsonl") / "t.jsonl"
    path.write_bytes((BOM if bom else b"") + b"\n".join(lines))
    _outcome(_text, path)


@FUZZ
@given(csv_files(["bag", "label", "split"], ["a.npy", "b.npy", "gone.pt", "0", "1", "train"]))
def test_fuzz_bag_csv(tmp_path_factory, content):
    path = _folder(tmp_path_factory.mktemp("bags")) / "b.csv"
    path.write_bytes(content)
    _outcome(_bags, path)


@FUZZ
@given(csv_files([], ["1", "2", "0", "0.5", "nan", "-3e9", "x"], header=False))
def test_fuzz_instance_table(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("table") / "musk.csv"
    path.write_bytes(content)
    _outcome(read_mil_table, path)


def _molblock(smiles: str) -> bytes:
    return Chem.MolToMolBlock(Chem.MolFromSmiles(smiles)).encode()


sdf_records = st.tuples(
    st.sampled_from([_molblock(s) for s in ("CCO", "c1ccccc1O", "CC(=O)N")] + [b"junk\n"]),
    st.lists(
        st.tuples(st.sampled_from([b"active", b"split", b"x y"]), _cells(["0", "1", "val"])),
        max_size=3,
    ),
).map(lambda r: r[0] + b"".join(b"> <" + k + b">\n" + v + b"\n\n" for k, v in r[1]) + b"$$$$\n")


@FUZZ
@given(st.lists(sdf_records, max_size=4), st.binary(max_size=3), st.integers(0, 400))
def test_fuzz_sdf(tmp_path_factory, records, noise, at):
    content = b"".join(records)
    path = tmp_path_factory.mktemp("sdf") / "m.sdf"
    path.write_bytes(content[:at] + noise + content[at:])
    _outcome(_molecule_csv, path)


CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _voc(root: Path) -> Path:
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    _png(root / "JPEGImages" / "im.jpg", 8)
    (root / "ImageSets" / "Main" / "train.txt").write_text("im\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("")
    return root


xml_field = st.one_of(
    st.sampled_from(["1", "7", "3.5", "inf", "nan", "-1e400", "", "dog", "<b>"]),
    st.text(max_size=6),
)


@FUZZ
@given(
    st.lists(
        st.tuples(xml_field, xml_field, st.lists(xml_field, min_size=0, max_size=4)), max_size=3
    ),
    st.binary(max_size=3),
    st.booleans(),
)
def test_fuzz_voc_annotations(tmp_path_factory, objects, noise, bom):
    root = _voc(tmp_path_factory.mktemp("voc"))
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in zip(CORNERS, box, strict=False))
        + "</bndbox></object>"
        for name, difficult, box in objects
    )
    xml = f"<annotation>{body}</annotation>".encode("utf-8", "surrogatepass") + noise
    (root / "Annotations" / "im.xml").write_bytes((BOM if bom else b"") + xml)
    _outcome(read_voc, root)


def _unlabelled_molecules(path: Path):
    return molecules.load(str(path), {"plugin": {"split_column": "fold"}, "labelled": False})


def _unlabelled_texts(path: Path):
    return texts.load(path, TextOptions(split_column="fold"), labelled=False)


# (reader without labels, header, three rows): no label column, and a split column the run named
# that holds no split: prediction reads every item, whatever its split
UNLABELLED = {
    "manifest": (lambda p: read_manifest(p, labelled=False), b"path,split",
                 [b"a.png,holdout", b"b.png,", b"c.png,train"]),
    "image": (lambda p: read_image_csv(p, labelled=False), b"path,split",
              [b"a.png,holdout", b"b.png,", b"c.png,train"]),
    "molecule": (_unlabelled_molecules, b"smiles,fold", [b"CCO,x", b"c1ccccc1O,", b"CCN,3"]),
    "text": (_unlabelled_texts, b"text,fold", [b"good food,x", b"bad room,", b"fine,3"]),
    "bags": (lambda p: read_bag_csv(p, labelled=False), b"bag,split",
             [b"a.npy,holdout", b"b.npy,", b"c.npy,train"]),
}  # fmt: skip


@pytest.mark.parametrize("reader", sorted(UNLABELLED))
def test_every_csv_reader_reads_items_without_labels_or_splits_for_prediction(tmp_path, reader):
    read, header, rows = UNLABELLED[reader]
    path = _folder(tmp_path) / "data.csv"
    path.write_bytes(b"\n".join([header, *rows]) + b"\n")
    result = read(path)
    items = result.rows if hasattr(result, "rows") else result.train + result.val + result.test
    assert len(items) == 3 and not result.bad
    assert all(item.labels == () for item in items)


def test_audio_without_labels_reads_no_events(tmp_path):
    with wave.open(str(tmp_path / "a.wav"), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes((np.sin(np.arange(8000) / 5) * 10000).astype("<i2").tobytes())
    (tmp_path / "a.csv").write_text("path,events\na.wav,beep:0.1:9.0\n")  # past the clip's end
    with pytest.raises(ValueError, match="no 'labels' column"):
        read_audio_csv(tmp_path / "a.csv", 8000)
    result = read_audio_csv(tmp_path / "a.csv", 8000, labelled=False)
    examples = result.train + result.val + result.test
    assert [(e.labels, e.truth) for e in examples] == [((), {})] and not result.bad


def test_an_id_or_name_column_names_the_items(tmp_path):
    """Predictions and bad items carry the user's own identifiers beside the line."""
    (tmp_path / "t.csv").write_text("ID,text,label\nr1,good,pos\n,bad,neg\nr3,,pos\n")
    result = texts.load(tmp_path / "t.csv", TextOptions())
    assert sorted(e.name for e in result.train + result.val + result.test) == [
        "t.csv:2 (r1)", "t.csv:3"
    ]  # fmt: skip
    assert [b.name for b in result.bad] == ["t.csv:4 (r3)"]
    (tmp_path / "t.jsonl").write_text('{"id": 7, "text": "good", "label": "pos"}\n')
    result = texts.load(tmp_path / "t.jsonl", TextOptions())
    assert [e.name for e in result.train + result.val + result.test] == ["t.jsonl:1 (7)"]
    mol = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    mol.SetProp("_Name", "aspirin")
    mol.SetProp("active", "1")
    with Chem.SDWriter(str(tmp_path / "m.sdf")) as writer:
        writer.write(mol)
    result = molecules.load(str(tmp_path / "m.sdf"), {"plugin": {}})
    assert [e.name for e in result.train + result.val + result.test] == ["m.sdf:record 1 (aspirin)"]


def test_split_names_are_read_in_any_case(tmp_path):
    (tmp_path / "t.csv").write_text(
        "text,label,split\na,pos,Train\nb,neg,TRAIN\nc,pos, Val \nd,neg,TEST\n"
    )
    result = texts.load(tmp_path / "t.csv", TextOptions())
    assert [len(result.train), len(result.val), len(result.test)] == [2, 1, 1] and not result.bad
    (tmp_path / "m.csv").write_text("path,labels,split\na.png,cat,TEST\n")
    assert read_manifest(tmp_path / "m.csv").rows[0].split == "test"


def test_odd_cells_name_themselves_as_written(tmp_path):
    (tmp_path / "t.csv").write_text("text,label,split\na,pos,Tset\n")
    assert texts.load(tmp_path / "t.csv", TextOptions()).bad[0].reason.startswith("split 'Tset'")
    (tmp_path / "m.csv").write_text("path,labels,split\na.png,cat,VALIDATION\n,cat,test\n")
    reasons = [b.reason for b in read_manifest(tmp_path / "m.csv").bad]
    assert reasons == ["split must be train, val or test, got 'VALIDATION'",
                       "no file named (the path cell is empty)"]  # fmt: skip
    mol = Chem.MolFromSmiles("CCO")
    mol.SetProp("active", "1")
    with Chem.SDWriter(str(tmp_path / "lat.sdf")) as writer:
        writer.write(mol)
    raw = (tmp_path / "lat.sdf").read_bytes()
    (tmp_path / "lat.sdf").write_bytes("caf\xe9".encode("latin-1") + raw)  # a Latin-1 title
    result = molecules.load(str(tmp_path / "lat.sdf"), {"plugin": {}})
    assert [e.name for e in result.train + result.val + result.test] == ["lat.sdf:record 1"]
