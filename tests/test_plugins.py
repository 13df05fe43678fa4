"""Plugin discovery through entry points: the example plugin, broken and clashing plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from negev.plugins import PluginError, discover_plugins, get_plugin
from negev_cli.app import app


def _fake_distribution(root, dist: str, entry: str, module: str, source: str) -> None:
    """A distribution installed as a bare .dist-info folder, visible to importlib.metadata."""
    info = root / f"{dist.replace('-', '_')}-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text(f"[negev.modalities]\n{entry} = {module}:Plugin\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "broken-import", "brokenimport", "fake_broken", "import nope\n")
    _fake_distribution(
        tmp_path,
        "not-a-plugin",
        "notaplugin",
        "fake_not_plugin",
        "class Plugin:\n    name = 'notaplugin'\n",
    )
    clash = """
        from negev_example_plugin import TokensPlugin
        class Plugin(TokensPlugin):
            pass
    """
    _fake_distribution(tmp_path, "tokens-clone", "tokens", "fake_clash", clash)
    abstract = """
        from negev.plugins import ModalityPlugin
        class Plugin(ModalityPlugin):
            name = "abstract"
            description = "forgets its hooks"
    """
    _fake_distribution(tmp_path, "abstract-plugin", "abstract", "fake_abstract", abstract)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("fake_broken", "fake_not_plugin", "fake_clash", "fake_abstract"):
        sys.modules.pop(module, None)


def test_example_plugin_is_found_like_a_third_party_one():
    found = discover_plugins()
    status = found["tokens"][0]
    assert status.ok and status.distribution == "negev-example-plugin"
    assert get_plugin("tokens").description


def test_broken_plugins_are_reported_and_refused(fake_plugins):
    found = discover_plugins()
    assert "ModuleNotFoundError" in found["brokenimport"][0].error
    assert "not a negev.plugins.ModalityPlugin" in found["notaplugin"][0].error
    assert "PluginError: plugin does not implement build_encoder, collate" in (
        found["abstract"][0].error
    )
    assert len(found["tokens"]) == 2
    assert all("registered by several distributions" in s.error for s in found["tokens"])
    with pytest.raises(PluginError, match=r"modality 'brokenimport' \(broken-import\) is broken"):
        get_plugin("brokenimport")
    with pytest.raises(PluginError, match="unknown modality 'nothing'"):
        get_plugin("nothing")
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0
    for text in ("broken-import", "not-a-plugin", "tokens-clone", "negev-example-plugin"):
        assert text in result.output


def test_getting_one_plugin_imports_no_other():
    """Only the asked entry point is imported: not the other modalities' plugins nor their heavy
    libraries (checked in a fresh interpreter)."""
    code = """
import sys
from negev.plugins import get_plugin
get_plugin("tokens")
heavy = ("negev_image", "negev_molecule", "negev_text", "negev_audio", "negev_bags", "rdkit",
         "torchvision", "torchaudio", "transformers")
print(" ".join(m for m in heavy if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
