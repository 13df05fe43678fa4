"""``negev explain``: the positive and negative evidence of each class for given inputs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from negev.engine import explain
from negev_cli.errors import friendly_errors
from negev_cli.inputs import refuse_data_files


@friendly_errors
def explain_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    input_: list[str] = typer.Option(..., "--input", "-i", help="An item (path or literal)."),
    out: Path = typer.Option(None, help="Where the rendered evidence goes."),
    top: int = typer.Option(3, help="Regions listed per class and sign."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
    which: str = typer.Option("best", help="Checkpoint of a run directory: best or latest."),
    overwrite: bool = typer.Option(
        False, help="Render into an --out that holds files, replacing those of the same names."
    ),
) -> None:
    """Render each class's evidence (files) and list the top regions in the terminal."""
    if top < 1:
        raise ValueError(f"--top must be >= 1, got {top}")
    refuse_data_files(input_, "explain")
    console = Console()
    for item in explain(checkpoint, input_, out, which=which, device=device, overwrite=overwrite):
        console.print(f"[bold]{item.example.name}[/bold]")
        for c, name in enumerate(item.classes):
            high, low = (
                ", ".join(f"{region} ({value:+.3g})" for region, value in part)
                for part in item.top_regions(c, top)
            )
            score = f"{float(item.scores[c]):+.3f}"
            console.print(f"  {name}: score {score}  [green]+ {high}[/green]  [red]- {low}[/red]")
        for path in item.files:
            console.print(f"  wrote {path}")
