"""The root of the ``negev`` command: --help and --version, in-process and as a real process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import negev
from negev_cli.app import app


def test_version_and_help_in_process():
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"negev {negev.__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Negative evidence models" in result.output


def test_console_script_runs_as_a_process():
    script = Path(sys.executable).with_name("negev")
    command = [str(script)] if script.exists() else [shutil.which("negev") or "negev"]
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"negev {negev.__version__}"
