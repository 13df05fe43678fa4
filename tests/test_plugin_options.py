"""Typed plugin options: parsing, the engine's checks of --set / [plugin], old runs, the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from negev.engine import evaluate, load_model, resolve_config, train
from negev.engine.trainer import load_plugin_state, refuse_ignored_options
from negev.plugins import get_plugin
from negev.plugins.options import (
    describe_options,
    ignored_options,
    option,
    parse_options,
    plugin_table,
    without_ignored,
)
from negev_cli.app import app


@dataclass(frozen=True)
class Opts:
    size: int = option(448, "side")
    rate: float = option(0.5, "a share")
    flag: bool = option(False, "a switch")
    name: str = option("small", "a name")
    widths: tuple[int, ...] = option((1, 2), "widths")
    root: str | None = option(None, "a path")
    kind: Literal["files", "table"] = option("files", "a choice")


def test_defaults_and_text_values_take_the_declared_types():
    assert parse_options(Opts, {}) == Opts()
    parsed = parse_options(
        Opts,
        {"size": "224", "rate": "1e-2", "flag": "yes", "name": "007", "widths": "1,2,3",
         "root": "none", "kind": "table"},
    )  # fmt: skip
    assert parsed == Opts(224, 0.01, True, "007", (1, 2, 3), None, "table")
    # TOML values: typed already; a list for a tuple, an int where a float is expected
    assert parse_options(Opts, {"rate": 1, "widths": [3], "flag": True}).rate == 1.0
    assert parse_options(Opts, {"widths": 4}).widths == (4,)


def test_an_unknown_key_is_an_error_suggesting_the_closest():
    with pytest.raises(ValueError, match=r"unknown image option 'sise'; did you mean 'size'\?"):
        parse_options(Opts, {"sise": 3}, owner="image")
    with pytest.raises(ValueError, match="valid: size, rate, flag, name, widths, root, kind"):
        parse_options(Opts, {"zzz": 3})
    assert parse_options(Opts, {"zzz": 3, "size": 5}, strict=False) == Opts(size=5)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("size", "big", "an int"),
        ("size", 2.5, "an int"),
        ("size", True, "an int"),
        ("rate", "half", "a number"),
        ("flag", "maybe", "true or false"),
        ("flag", 2, "true or false"),
        ("widths", "1,x", "comma-separated ints"),
        ("kind", "csv", "one of files, table"),
        ("name", ["a"], "text"),
    ],
)
def test_a_wrong_type_names_the_key_the_type_and_the_value(key, value, expected):
    with pytest.raises(ValueError) as error:
        parse_options(Opts, {key: value}, owner="image")
    assert str(error.value) == f"image option {key!r} must be {expected}, got {value!r}"


@given(st.text(max_size=8))
def test_bools_accept_exactly_six_words(text):
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    key = text.strip().lower()
    if key in words:
        assert parse_options(Opts, {"flag": text}).flag is words[key]
    else:
        with pytest.raises(ValueError, match="'flag' must be true or false"):
            parse_options(Opts, {"flag": text})


@given(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_written_as_text_come_back(integer, number):
    parsed = parse_options(Opts, {"size": str(integer), "rate": repr(number)})
    assert parsed.size == integer and parsed.rate == number


def test_describe_lists_every_option_with_type_default_and_help():
    rows = describe_options(Opts)
    assert rows[0] == ("size", "an int", 448, "side")
    assert rows[5] == ("root", "text or none", None, "a path")


def test_a_plugin_without_options_class_gets_its_table_as_given():
    class Legacy:
        name, options_class = "legacy", None

    table = plugin_table(Legacy(), {"anything": "1"}, {"n": "3", "x": "1.5", "b": "true", "s": "a"})
    assert table == {"anything": "1", "n": 3, "x": 1.5, "b": True, "s": "a"}

    class OldStyle:  # load_state written for the first contract: no config
        def load_state(self, state):
            self.state = state

    plugin = OldStyle()
    _, config = resolve_config({}, {"modality": "tokens"})
    load_plugin_state(plugin, {"k": 1}, config)
    assert plugin.state == {"k": 1}


def test_resolve_config_checks_and_completes_the_plugin_table():
    _, config = resolve_config({"plugin": {"demo_size": 50}}, {"modality": "tokens"})
    assert config.plugin == {"demo_size": 50, "swap": 0.1}
    _, config = resolve_config({}, {"modality": "tokens", "plugin": {"swap": "0"}})
    assert config.plugin["swap"] == 0.0
    with pytest.raises(ValueError, match="did you mean 'demo_size'"):
        resolve_config({"plugin": {"demosize": 50}}, {"modality": "tokens"})
    with pytest.raises(ValueError, match=r"swap must be in \[0, 1\]"):
        resolve_config({}, {"modality": "tokens", "plugin": {"swap": "2"}})
    _, config = resolve_config({}, {"modality": "image", "plugin": {"test_scales": "448,576"}})
    assert config.plugin["test_scales"] == [448, 576] and config.plugin["image_size"] is None
    json.dumps(config.to_dict())  # what config.json saves


@dataclass(frozen=True)
class Encoded:
    encoder: Literal["hashed", "conv"] = option("hashed", "the encoder")
    buckets: int = option(64, "hashed: rows", applies={"encoder": ("hashed",)})
    warm: bool = option(True, "hashed: fit first", applies={"encoder": ("hashed",)},
                        otherwise=False)  # fmt: skip


@pytest.mark.parametrize(
    ("table", "ignored"),
    [
        ({}, []),
        ({"buckets": 8, "warm": False}, []),  # hashed: they apply
        ({"encoder": "conv"}, []),  # at their defaults they were not set
        ({"encoder": "conv", "buckets": 64}, []),
        ({"encoder": "conv", "warm": False}, []),  # what conv does in any case
        ({"encoder": "conv", "buckets": 8}, ["buckets"]),
        ({"encoder": "conv", "buckets": 8, "warm": "no"}, ["buckets"]),
    ],
)
def test_an_option_set_where_it_has_no_effect_is_reported(table, ignored):
    options = parse_options(Encoded, table)
    wrong = ignored_options(options, owner="demo plugin")
    assert list(wrong) == ignored
    for name in ignored:
        assert wrong[name] == (
            f"demo plugin option {name}=8 only applies under encoder=hashed, and this run's "
            "encoder is conv: drop it or change encoder"
        )
    reset = without_ignored(options)
    assert ignored_options(reset) == {} and reset.encoder == options.encoder
    if options.encoder == "conv":  # another encoder's options all at their defaults
        assert (reset.buckets, reset.warm) == (64, True)
    else:
        assert reset == options


@pytest.mark.parametrize(
    ("modality", "sets", "name"),
    [
        ("text", {"encoder": "conv", "buckets": "1024"}, "buckets"),
        ("text", {"encoder": "conv", "tfidf_norm": "true"}, "tfidf_norm"),
        ("text", {"encoder": "conv", "hidden": "8"}, "hidden"),
        ("text", {"transformer_path": "/models/bert"}, "transformer_path"),
        ("molecule", {"encoder": "mpnn", "buckets": "512"}, "buckets"),
        ("molecule", {"layers": "3"}, "layers"),
        ("image", {"trunk": "resnet18", "width": "16"}, "width"),
        ("image", {"crf_pixels": "4096"}, "crf_pixels"),
        ("bags", {"dim": "8", "format": "table"}, "dim"),
        ("bags", {"bag_column": "1"}, "bag_column"),
    ],
)
def test_training_refuses_an_option_where_it_has_no_effect(modality, sets, name, tmp_path):
    plugin, config = resolve_config({}, {"modality": modality, "plugin": sets})
    with pytest.raises(ValueError, match=rf"^{modality} plugin option {name}=.* only applies"):
        train(plugin, config)
    result = invoke("train", "-m", modality, "--out", str(tmp_path),
                    *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")])  # fmt: skip
    assert result.exit_code == 1 and f"option {name}=" in result.output, result.output
    assert not list(tmp_path.glob("checkpoint-*"))


def test_what_another_encoder_does_anyway_is_accepted():
    for modality, sets in [("text", {"encoder": "conv", "warm_start": "false",
                                     "tfidf_norm": "false"}),
                           ("molecule", {"encoder": "mpnn", "warm_start": "false"})]:  # fmt: skip
        plugin, config = resolve_config({}, {"modality": modality, "plugin": sets})
        refuse_ignored_options(plugin, config)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_misspelt_or_mistyped_set_is_a_one_line_error(tmp_path):
    result = invoke("train", "-m", "image", "--set", "imagesize=224", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "unknown image option 'imagesize'; did you mean 'image_size'?" in result.output
    result = invoke("train", "-m", "image", "--set", "width=wide", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "image option 'width' must be an int, got 'wide'" in result.output
    result = invoke("train", "-m", "molecule", "--set", "rings=maybe", "--out", str(tmp_path))
    assert "molecule option 'rings' must be true or false, got 'maybe'" in result.output
    config = tmp_path / "run.toml"
    config.write_text('modality = "text"\n[plugin]\nencoderr = "conv"\n')
    result = invoke("train", "--config", str(config), "--out", str(tmp_path))
    assert "did you mean 'encoder'?" in result.output
    assert not list(tmp_path.glob("checkpoint-*"))


def test_plugins_options_prints_each_option():
    result = invoke("plugins", "--options", "image")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "an int or none" in lines["image_size"] and "448" in lines["image_size"]
    assert "small" in lines["trunk"] and "true or false" in lines["test_flip"]
    for name in ("tokens", "text", "molecule", "audio", "bags"):
        shown = invoke("plugins", "--options", name)
        assert shown.exit_code == 0 and "option" in shown.output, shown.output
    assert invoke("plugins", "--options", "nope").exit_code == 1


def test_image_region_names_come_from_the_options_not_from_build_encoder():
    # the small trunk's cells are 4 px, a ResNet's 32 px, without building either encoder
    plugin = get_plugin("image")
    plugin.load_state({"image_size": 64}, {"plugin": {"trunk": "small"}})
    assert len(plugin.region_names(None)) == 16 * 16
    plugin = get_plugin("image")
    plugin.load_state({"image_size": 64}, {"plugin": {"trunk": "resnet18"}})
    assert len(plugin.region_names(None)) == math.ceil(64 / 32) ** 2


def test_a_saved_table_without_a_later_option_takes_its_saved_before_value():
    @dataclass(frozen=True)
    class Later:
        size: int = option(448, "side")
        norm: bool | None = option(None, "added later", saved_before=False)

    class Plugin:
        name, options_class = "later", Later

    assert plugin_table(Plugin(), {"size": 1}, strict=False) == {"size": 1, "norm": False}
    assert plugin_table(Plugin(), {"size": 1}) == {"size": 1, "norm": None}  # a new run
    saved = {"size": 1, "norm": True}  # saved since: its value stands, and --set wins
    assert plugin_table(Plugin(), saved, strict=False)["norm"] is True
    assert plugin_table(Plugin(), {"size": 1}, {"norm": "true"}, strict=False)["norm"] is True


def test_a_text_run_saved_before_tfidf_norm_loads_as_it_was_trained(tmp_path):
    """Its hashed windows were not normalised: the encoder it gets has no row weights to load."""
    from negev.testing.runs import untrained_run

    untrained_run(tmp_path, "text", {"plugin": {"demo_size": 30, "buckets": 64,
                                                "tfidf_norm": False}})  # fmt: skip
    for saved in tmp_path.glob("checkpoint-*/config.json"):
        meta = json.loads(saved.read_text())
        del meta["config"]["plugin"]["tfidf_norm"]
        saved.write_text(json.dumps(meta))
    _, config, model, _ = load_model(tmp_path)
    assert config.pooling == "sumwildcat" and config.plugin["tfidf_norm"] is False
    assert model.encoder.row_norm is False


def test_runs_saved_with_unchecked_options_still_load_and_evaluate(tmp_path):
    config = {"modality": "tokens", "epochs": 1, "out": str(tmp_path / "run"), "workers": 0}
    _, run_config = resolve_config({}, {**config, "plugin": {"demo_size": 80}})
    result = train(get_plugin("tokens"), run_config, quiet=True)
    # as an older negev saved it: text from --set, a misspelt key it ignored, an old state
    for saved in result.run_dir.glob("checkpoint-*/config.json"):
        meta = json.loads(saved.read_text())
        meta["config"]["plugin"] = {"demo_size": "80", "swpa": 0.3}
        meta["plugin_state"] = {"swap": 0.1}
        saved.write_text(json.dumps(meta))
    plugin, loaded, _, _ = load_model(result.run_dir)
    assert loaded.plugin == {"demo_size": 80, "swap": 0.1}
    assert plugin.options.demo_size == 80
    metrics = evaluate(result.run_dir, "val", options={"demo_size": "80"}).metrics
    assert 0 <= metrics["mAP"] <= 1
    with pytest.raises(ValueError, match="did you mean 'demo_size'"):
        evaluate(result.run_dir, "val", options={"demo_sise": "80"})


@pytest.mark.parametrize(
    ("name", "key", "default"),
    [
        ("image", "max_pixels", 100_000_000),
        ("molecule", "max_atoms", 1000),
        ("text", "max_chars", 131_072),
        ("audio", "max_seconds", 600.0),
        ("bags", "max_instances", 500_000),
    ],
)
def test_the_limits_per_item_are_declared_checked_options(name, key, default):
    plugin = get_plugin(name)
    assert plugin_table(plugin, {})[key] == default  # saved with the run, default filled in
    with pytest.raises(ValueError, match=f"{name} option '{key}' must be"):
        plugin_table(plugin, {}, {key: "many"})
    with pytest.raises(ValueError, match=f"plugin option {key} must be >"):
        plugin_table(plugin, {}, {key: "0"})


def test_a_saved_limit_applies_to_explain_inputs(tmp_path):
    # read_input runs after load_state(state, config): the run's options, limits included
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    plugin = get_plugin("image")
    plugin.load_state({"image_size": 64}, {"plugin": {"max_pixels": 400}})
    assert plugin.read_input(str(tmp_path / "big.png")).name.endswith("big.png")
    plugin.load_state({"image_size": 64}, {"plugin": {"max_pixels": 399}})
    with pytest.raises(ValueError, match="20 x 20 pixels, over the limit of max_pixels=399"):
        plugin.read_input(str(tmp_path / "big.png"))
    plugin = get_plugin("molecule")
    plugin.load_state({}, {"plugin": {"max_atoms": 5}})
    with pytest.raises(ValueError, match="6 atoms, over the limit of max_atoms=5"):
        plugin.read_input("CCCCCC")
