"""The ``negev`` Typer application: the root command and its global options."""

from __future__ import annotations

import typer

import negev

app = typer.Typer(
    name="negev",
    help="Negative evidence models for weakly supervised learning.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"negev {negev.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Train, evaluate and explain negative-evidence models (WELDON, WILDCAT, MANTRA)."""


def main() -> None:
    """Console entry point of ``negev``."""
    app()
