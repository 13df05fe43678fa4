"""Files written from data: one sanitiser (negev.files.safe_name), atomic writes, every plugin's
rendering inside --out whatever the item and class names, explain refusing a folder with files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from negev.engine import explain
from negev.files import atomic_write, safe_name
from negev.plugins import Example, get_plugin
from negev.plugins.render import item_stem, write_file
from negev_audio.clips import Waveform
from negev_bags.bags import Bag
from negev_molecule.chem import parse_smiles
from negev_molecule.data import Featurizer

TRAVERSALS = ["x/../../../../ESCAPED", "../up", "..", ".", "/etc/passwd", "a\\b", "tox/acute", ""]
names = st.one_of(st.sampled_from(TRAVERSALS), st.text(st.characters(codec=None), max_size=60))


@given(names, names)
def test_safe_names_are_one_plain_component_and_distinct(first, second):
    for text in (first, second):
        name = safe_name(text)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,49}", name) and name not in (".", "..")
    if first != second:
        assert safe_name(first) != safe_name(second)
        assert item_stem("img/" + first, key=first) != item_stem("img/" + first, key=second)


def test_clean_names_stay_readable_and_the_rest_get_a_hash():
    assert safe_name("cat") == "cat"
    assert re.fullmatch(r"tox_acute-[0-9a-f]{8}", safe_name("tox/acute"))
    assert safe_name("a_b") != safe_name("a/b")
    assert safe_name(safe_name("a/b")) != safe_name("a/b")  # a name that looks hashed is hashed
    # the collisions of the old names: readable parts that agree
    assert item_stem("img/im3.png") != item_stem("img2/im3.png")
    assert item_stem("CC=C") != item_stem("CC#C")
    text = "x" * 40
    assert item_stem(text, key=text + " one") != item_stem(text, key=text + " two")


def test_write_file_refuses_paths_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "out"
    for bad in ("../x.png", "a/b.png", ".hidden", "", "..", "a\\b"):
        with pytest.raises(ValueError, match="not a plain file name"):
            write_file(out, bad, lambda path: path.write_text("x"))

    def half_then_fail(path: Path) -> None:
        path.write_text("half")
        raise UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed")

    with pytest.raises(UnicodeEncodeError):
        write_file(out, "page.html", half_then_fail)
    assert list(out.iterdir()) == []
    (out / "page.html").write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(out / "page.html", half_then_fail)
    assert [p.name for p in out.iterdir()] == ["page.html"]
    assert (out / "page.html").read_text() == "old"
    atomic_write(out / "page.html", lambda path: path.write_text("new"))
    assert (out / "page.html").read_text() == "new" and (out / "page.html").stat().st_mode & 0o44


def _item(modality: str, name: str, classes: int):
    """(plugin, example, maps (C, *regions)) of a small item of ``modality``."""
    plugin = get_plugin(modality)
    generator = torch.Generator().manual_seed(0)
    if modality == "text":
        plugin.load_state({}, {"plugin": {"widths": "1"}})
        return plugin, Example(name, "good food here", ()), torch.randn(classes, 3)
    if modality == "molecule":
        graph = Featurizer()(parse_smiles("CCO"))
        return plugin, Example(name, graph, ()), torch.randn(classes, len(graph.regions))
    if modality == "image":
        pixels = torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8, generator=generator)
        return plugin, Example(name, pixels, ()), torch.randn(classes, 2, 2)
    if modality == "audio":
        wave = Waveform(torch.randn(4000, generator=generator) * 0.1, plugin.sample_rate)
        return plugin, Example(name, wave, ()), torch.randn(classes, plugin._frames(4000))
    bag = Bag(torch.randn(5, 3, generator=generator), torch.rand(5, 2) * 100, size=5)
    return plugin, Example(name, bag, ()), torch.randn(classes, 5)


FILES = {"text": lambda c: 1, "molecule": lambda c: 2 * c, "image": lambda c: c + 1,
         "audio": lambda c: 1, "bags": lambda c: c + 1}  # fmt: skip


@pytest.mark.parametrize("modality", sorted(FILES))
@settings(max_examples=12, deadline=None)
@given(item=names, classes=st.lists(names, min_size=1, max_size=3, unique=True))
@example(item="x/../../../../ESCAPED", classes=["x/../../../../ESCAPED", "tox/acute"])
@example(item="../../up.png", classes=["a/b", "a_b"])
@example(item="x", classes=["\ud800"])  # a lone surrogate: not valid Unicode, written escaped
def test_rendering_writes_only_inside_out_whatever_the_names(
    tmp_path_factory, modality, item, classes
):
    root = tmp_path_factory.mktemp("render")
    out = root / "1" / "2" / "3" / "4" / "5" / "out"
    plugin, item_example, maps = _item(modality, item, len(classes))
    files = plugin.render_evidence(item_example, maps, torch.randn(len(classes)), classes, out)
    written = sorted(p for p in root.rglob("*") if p.is_file())
    assert written == sorted(files) and len(set(files)) == FILES[modality](len(classes))
    assert all(p.resolve().parent == out.resolve() for p in written)


def test_explain_refuses_a_folder_that_holds_files(tmp_path):
    out = tmp_path / "explained"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="already holds files: pass --overwrite"):
        explain(tmp_path / "no-run", ["x"], out)
    with pytest.raises(Exception) as raised:  # --overwrite goes on (here: to the missing run)
        explain(tmp_path / "no-run", ["x"], out, overwrite=True)
    assert not isinstance(raised.value, FileExistsError)
    assert (out / "mine.txt").read_text() == "keep me"


def test_text_that_is_not_utf8_is_refused_before_any_file():
    with pytest.raises(ValueError, match="is not UTF-8"):
        get_plugin("text").read_input("caf\udce9 au lait")
