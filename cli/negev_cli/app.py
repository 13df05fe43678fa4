"""The ``negev`` Typer application: the root command and its global options."""

from __future__ import annotations

import typer

import negev
from negev_cli.commands.evaluate import evaluate_command
from negev_cli.commands.explain import explain_command
from negev_cli.commands.export import export_command
from negev_cli.commands.plugins import plugins_command
from negev_cli.commands.predict import predict_command
from negev_cli.commands.train import train_command
from negev_cli.commands.tune import tune_command
from negev_cli.errors import set_debug

app = typer.Typer(
    name="negev",
    help="Negative evidence models for weakly supervised learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("explain")(explain_command)
app.command("predict")(predict_command)
app.command("export")(export_command)
app.command("plugins")(plugins_command)
app.command("tune")(tune_command)


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
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks on errors."),
) -> None:
    """Train, evaluate and explain negative-evidence models (WELDON, WILDCAT, MANTRA)."""
    set_debug(debug)


def main() -> None:
    """Console entry point of ``negev``."""
    app()
