"""What ``pip install negev`` needs: the layers, losses and metrics import with torch and numpy
only; the engine and CLI come with extras."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("sklearn", "typer", "rich", "optuna", "safetensors", "scipy", "torchmetrics")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!;\[ ]", r, maxsplit=1)[0] for r in requirements}


def test_core_distribution_needs_torch_and_numpy_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _names(project["dependencies"]) == {"torch", "numpy"}
    extras = project["optional-dependencies"]
    assert {"typer", "rich", "safetensors", "scikit-learn", "optuna"} <= _names(extras["cli"])
    assert _names(extras["sklearn"]) == {"scikit-learn"}
    assert _names(extras["metrics"]) == {"torchmetrics"}
    assert extras["all"] == ["negev[cli,sklearn,metrics]"]
    assert "-e .[all,test]" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_core_imports_without_the_optional_libraries():
    """In a fresh interpreter where the optional libraries cannot be imported at all."""
    code = f"""
import sys
for name in {OPTIONAL!r}:
    sys.modules[name] = None  # any import of it raises ImportError
import negev, negev.nn, negev.nn.functional, negev.metrics, negev.plugins, negev.errors
from negev.nn import create_loss, create_pool
create_pool("maxmin"), create_loss("bce")
from negev.metrics import average_precision
try:
    from negev.metrics import MeanAveragePrecision
except ModuleNotFoundError as exc:
    assert "pip install 'negev[metrics]'" in str(exc), exc
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
