"""The plugin guide (docs/plugins.md) as a test: its plugin passes check_plugin, reads a manifest
with a bad file, and trains; its test snippet runs."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from negev.engine import RunConfig, train
from negev.engine.trainer import load_plugin_state
from negev.plugins.options import plugin_table
from negev.testing import check_plugin

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


@pytest.fixture(scope="module")
def guide() -> types.ModuleType:
    """The guide's python blocks, executed as one module (dataclasses need a real module)."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2, "the guide has the plugin and its test"
    module = types.ModuleType("negev_guide_signal")
    sys.modules[module.__name__] = module
    try:
        exec(compile(blocks[0], str(GUIDE), "exec"), module.__dict__)
        module.test_snippet = blocks[1]
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_guide_plugin_passes_check_plugin(guide, tmp_path):
    (tmp_path / "letters.csv").write_text("1,2\nx,y\n")
    passed = check_plugin(
        guide.SignalPlugin,
        {"demo_size": 40},
        bad_inputs=[str(tmp_path / "missing.csv"), str(tmp_path / "letters.csv")],
    )
    assert passed[-1] == "evidence_metrics"
    exec(guide.test_snippet, guide.__dict__)  # the guide's own test, as a user would run it
    guide.test_signal_plugin_keeps_the_contract(tmp_path)


def test_the_guide_plugin_reads_a_manifest_and_names_bad_files(guide, tmp_path):
    for name, rows in (("a", 40), ("b", 30), ("c", 50)):
        (tmp_path / f"{name}.csv").write_text("".join(f"{i},{-i}\n" for i in range(rows)))
    (tmp_path / "d.csv").write_text("1,2\n3,nan\n")
    manifest = tmp_path / "data.csv"
    manifest.write_text("path,labels\na.csv,burst\nb.csv,\nc.csv,burst\nd.csv,\nmissing.csv,\n")
    data = guide.SignalPlugin().load_data(str(manifest), {"seed": 0})
    assert sorted(e.name for e in data.train + data.val + data.test) == [
        "data.csv:2 (a.csv)", "data.csv:3 (b.csv)", "data.csv:4 (c.csv)"
    ]  # fmt: skip
    assert [(b.name, b.reason) for b in data.bad] == [
        ("data.csv:5 (d.csv)", "d.csv:2: expected 2 finite values"),
        ("data.csv:6 (missing.csv)", f"{tmp_path / 'missing.csv'}: no such file"),
    ]
    assert data.multilabel and not data.builtin
    # the limit per item is an option: a longer signal is a bad item, for explain an error
    data = guide.SignalPlugin().load_data(str(manifest), {"plugin": {"max_samples": 45}})
    assert ("data.csv:4 (c.csv)", "c.csv: over the limit of max_samples=45 samples") in [
        (b.name, b.reason) for b in data.bad
    ]
    plugin = guide.SignalPlugin()
    plugin.load_state({}, {"plugin": {"max_samples": 45}})
    with pytest.raises(ValueError, match="max_samples=45"):
        plugin.read_input(str(tmp_path / "c.csv"))


def test_the_guide_plugin_learns_its_demo(guide, tmp_path):
    plugin = guide.SignalPlugin()
    base = plugin.default_config()
    config = RunConfig.build(
        base, {"modality": "signal", "out": str(tmp_path), "epochs": 6, "workers": 0}
    )
    config.plugin = plugin_table(plugin, {"demo_size": 240})
    result = train(plugin, config, quiet=True, evidence=True)
    assert result.metrics["mAP"] > 0.9  # the burst without a spike, on the test split
    assert result.metrics["window_auprc"] > 0.3 and 0 <= result.metrics["pointing"] <= 1
    # what a saved run gives back: the statistics of the training split, not the defaults
    fresh = guide.SignalPlugin()
    load_plugin_state(fresh, {"mean": [5.0, 0.0], "std": [0.3, 3.0]}, config)
    assert fresh.setup.stats.mean == (5.0, 0.0) and fresh.setup.options.demo_size == 240
