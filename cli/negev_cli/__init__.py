"""The ``negev`` command line (Typer). Entry point: :func:`main`."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Console entry point of ``negev``; says which extra to install when the CLI's
    dependencies are missing (``pip install negev`` installs the layers only)."""
    try:
        from negev_cli.app import main as run
    except ModuleNotFoundError as exc:
        if exc.name in ("typer", "rich", "sklearn", "safetensors"):
            sys.exit(f"negev: the command line needs {exc.name}: pip install 'negev[cli]'")
        raise
    run()
