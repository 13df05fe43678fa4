"""The root of the ``negev`` command: --help and --version, in-process and as a real process."""

from __future__ import annotations

import json
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


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_train_evaluate_explain_plugins(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(
        'modality = "tokens"\nepochs = 5\nbatch-size = 16\n[plugin]\ndemo_size = 150\n'
    )
    # the command line overrides the file: 1 epoch, not 5
    result = invoke("train", "--config", str(config), "--epochs", "1", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert "test: mAP" in result.output

    result = invoke("evaluate", "--checkpoint", str(out), "--split", "val")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "evaluation_val.json").read_text())
    assert 0 <= metrics["mAP"] <= 1 and "pointing" in metrics

    explanations = tmp_path / "why"
    result = invoke(
        "explain", "--checkpoint", str(out), "-i", "3 1 2 7 5", "--out", str(explanations)
    )
    assert result.exit_code == 0, result.output
    assert "alpha: score" in result.output and "#1:1" in result.output
    page = next(explanations.glob("3_1_2_7_5-*.html")).read_text()
    assert "alpha" in page and "rgb(" in page

    result = invoke("plugins")
    assert result.exit_code == 0 and "negev-example-plugin" in result.output


def test_errors_are_one_readable_line(tmp_path):
    result = invoke("train", "--modality", "pictures")
    assert result.exit_code == 1
    assert "unknown modality 'pictures'; installed modalities:" in result.output
    assert "tokens" in result.output
    assert "Traceback" not in result.output

    result = invoke("train", "--modality", "tokens", "--pooling", "median")
    assert result.exit_code == 1 and "unknown pooling 'median'" in result.output

    result = invoke("evaluate", "--checkpoint", str(tmp_path))
    assert result.exit_code == 1 and "holds no checkpoint" in result.output

    result = invoke("--debug", "train", "--modality", "pictures")
    assert result.exit_code == 1 and result.exception is not None  # the traceback is kept

    result = invoke("train", "--modality", "tokens", "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 1 and "none.toml does not exist" in result.output


def test_bad_items_are_listed_and_skipped_only_on_request(tmp_path):
    data = tmp_path / "items.csv"
    rows = ["tokens,labels"]
    rows += [f"{i % 20} 1 2 3,alpha" if i % 2 else f"4 {i % 20} 6,beta" for i in range(60)]
    rows += ["1 2 x,alpha", ",beta", "1 2 99,alpha"]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    result = invoke("train", "-m", "tokens", "--data", str(data), "--out", str(out), "-q")
    assert result.exit_code == 1
    for expected in (
        "3 bad item(s)",
        "items.csv:62: token 'x'",
        "items.csv:63: empty",
        "--skip-bad",
    ):
        assert expected in result.output
    result = invoke(
        "train", "-m", "tokens", "--data", str(data), "--out", str(out), "-q",
        "--skip-bad", "--epochs", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "bad_items.json").read_text())
    assert [item["item"] for item in report] == ["items.csv:62", "items.csv:63", "items.csv:64"]
    # evaluate on data with bad items: the same advice, and the option it names exists there
    result = invoke("evaluate", "--checkpoint", str(out), "--data", str(data))
    assert result.exit_code == 1 and "pass --skip-bad" in result.output
    result = invoke("evaluate", "--checkpoint", str(out), "--data", str(data), "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "3 bad item(s) not evaluated: items.csv:62: token 'x'" in result.output  # said
