"""``negev evaluate``: metrics of a trained model on a split of its data or another dataset."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from negev.engine import evaluate
from negev.engine.checkpoint import metrics_json, write_file
from negev.engine.trainer import bad_listing
from negev_cli.commands.train import parse_sets
from negev_cli.errors import friendly_errors


@friendly_errors
def evaluate_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    data: str = typer.Option(
        None, help="Dataset path or spec (default: the run's own data); scored whole."
    ),
    split: str = typer.Option(
        None, help="train, val, test or all (default: test, or all of --data)."
    ),
    out: Path = typer.Option(None, help="JSON file for the metrics (default: in the run)."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
    which: str = typer.Option("best", help="Checkpoint of a run directory: best or latest."),
    workers: int = typer.Option(0, help="DataLoader worker processes (0: in-process)."),
    batch_size: int = typer.Option(None, help="Batch size (default: the run's)."),
    skip_bad: bool = typer.Option(False, help="Go on without the data's unreadable items."),
    set_: list[str] = typer.Option(
        None, "--set", help="Plugin option key=value for evaluation, e.g. test_scales=448,576."
    ),
) -> None:
    """Classification metrics, plus the plugin's evidence metrics where the data has ground
    truth; prints a table and writes JSON."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    result = evaluate(
        checkpoint, split, data, which=which, device=device, batch_size=batch_size,
        workers=workers, options=parse_sets(set_), skip_bad=skip_bad,
    )  # fmt: skip
    table = Table(title=f"{checkpoint} · {result.split} · {result.items} items")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}")
    Console().print(table)
    target = out or Path(checkpoint) / f"evaluation_{result.split}.json"
    write_file(target, metrics_json(result.metrics))
    Console().print(f"wrote {target} ({result.checkpoint.name})")
    if result.bad:  # left out under --skip-bad: said, as predict and train say it
        Console(stderr=True).print(
            f"[yellow]{len(result.bad)} bad item(s) not evaluated: {bad_listing(result.bad, 5)}"
        )
