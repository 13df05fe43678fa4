"""``negev plugins``: the installed modality plugins, their versions and status."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from negev.plugins import discover_plugins
from negev_cli.errors import friendly_errors


@friendly_errors
def plugins_command() -> None:
    """List the modality plugins found through the 'negev.modalities' entry points."""
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
