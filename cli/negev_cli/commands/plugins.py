"""``negev plugins``: the installed modality plugins, their versions and status; with
``--options NAME``, the options of one plugin."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from negev.plugins import discover_plugins, get_plugin
from negev.plugins.options import describe_options
from negev_cli.errors import friendly_errors


@friendly_errors
def plugins_command(
    options: str = typer.Option(
        None, "--options", metavar="NAME", help="Print the options (--set key=value) of a plugin."
    ),
) -> None:
    """List the modality plugins found through the 'negev.modalities' entry points."""
    if options is not None:
        _print_options(options)
        return
    table = Table(title="negev modality plugins")
    for column in ("modality", "distribution", "version", "status"):
        table.add_column(column)
    found = discover_plugins()
    for name in sorted(found):
        for status in found[name]:
            state = "[green]ok[/green]" if status.ok else f"[red]broken:[/red] {status.error}"
            table.add_row(name, status.distribution, status.version, state)
    if not found:
        table.add_row("-", "-", "-", "no plugin installed")
    Console(width=160).print(table)


def _print_options(name: str) -> None:
    plugin = get_plugin(name)
    if plugin.options_class is None:
        Console().print(f"{name}: the plugin declares no options class (options are not checked)")
        return
    table = Table(title=f"options of the {name!r} plugin (--set key=value, or \\[plugin] in TOML)")
    for column in ("option", "type", "default", "help"):
        table.add_column(column, overflow="fold")
    for key, kind, default, text in describe_options(plugin.options_class):
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        table.add_row(key, kind, shown, text)
    Console(width=160).print(table)
