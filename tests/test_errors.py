"""The error hierarchy and how the command line reports known errors and bugs."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from negev.engine.trainer import _weights_mismatch
from negev.errors import CheckpointError, ConfigError, DataError, NegevError, PluginError
from negev.plugins import get_plugin
from negev_cli.app import app


def test_errors_that_replaced_value_errors_are_still_value_errors():
    for error in (ConfigError, DataError, CheckpointError):
        assert issubclass(error, NegevError) and issubclass(error, ValueError)
    assert issubclass(PluginError, NegevError)


def test_a_plugin_bug_is_reported_as_internal_with_where_it_happened(monkeypatch, tmp_path):
    def load_data(self, spec, config):
        return config["plugin"]["nope"]  # a bug: KeyError

    monkeypatch.setattr(type(get_plugin("tokens")), "load_data", load_data)
    out = str(tmp_path / "run")
    result = CliRunner().invoke(app, ["train", "-m", "tokens", "--out", out, "-q"])
    assert result.exit_code == 1
    line = " ".join(result.output.split())  # the console may wrap the line
    assert f"internal error in {__name__}.load_data: KeyError: 'nope'" in line
    assert "(rerun with --debug, or report it)" in line and "Traceback" not in line
    result = CliRunner().invoke(app, ["--debug", "train", "-m", "tokens", "--out", out, "-q"])
    assert isinstance(result.exception, KeyError)  # --debug keeps the traceback


def test_a_known_error_is_one_line_without_the_bug_hint(tmp_path):
    options = ["--pooling", "maxmin", "--kmax", "3", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, ["train", "-m", "tokens", *options])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert line.startswith("error: pooling 'maxmin' (max+min")
    assert "takes no 'kmax'" in line and "internal error" not in line


def test_checkpoint_weights_are_checked_by_name_and_shape():
    expected = {"head.weight": torch.zeros(2, 3), "head.bias": torch.zeros(2)}
    assert _weights_mismatch(expected, dict(expected)) is None
    missing = {"head.weight": torch.zeros(2, 3)}
    assert _weights_mismatch(expected, missing) == "1 weight(s) missing, first 'head.bias'"
    extra = {**expected, "encoder.x": torch.zeros(1)}
    assert _weights_mismatch(expected, extra) == "1 unexpected weight(s), first 'encoder.x'"
    wrong = {**expected, "head.weight": torch.zeros(4, 3)}
    assert "'head.weight' has shape (4, 3), the model needs (2, 3)" in _weights_mismatch(
        expected, wrong
    )


@pytest.mark.parametrize("known", [False, True])
def test_out_of_memory_is_a_known_error(known):
    from negev_cli.errors import is_known

    error = torch.OutOfMemoryError("CUDA out of memory") if known else KeyError("x")
    assert is_known(error) is known
