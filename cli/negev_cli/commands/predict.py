"""``negev predict``: class scores and evidence files of a trained model on new items."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from negev.inference import Predictor
from negev.inference.outputs import prepare_out, write_predictions
from negev_cli.commands.train import parse_sets
from negev_cli.errors import friendly_errors
from negev_cli.inputs import refuse_data_files


@friendly_errors
def predict_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    data: str = typer.Option(
        None, help="Dataset path or spec, in any format the plugin reads (labels not needed)."
    ),
    input_: list[str] = typer.Option(
        None, "--input", "-i", help="An item (path or literal); repeat for several."
    ),
    out: Path = typer.Option(..., help="Directory for scores.csv and the evidence files."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
    which: str = typer.Option("best", help="Checkpoint of a run directory: best or latest."),
    workers: int = typer.Option(0, help="DataLoader worker processes (0: in-process)."),
    batch_size: int = typer.Option(None, help="Batch size (default: the run's)."),
    skip_bad: bool = typer.Option(
        False, help="List unreadable items in bad_items.json and go on without them."
    ),
    overwrite: bool = typer.Option(False, help="Replace what a previous prediction wrote."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    set_: list[str] = typer.Option(
        None, "--set", help="Plugin option key=value for reading --data, e.g. classes=a|b."
    ),
) -> None:
    """Score new items with a trained model and write scores and evidence maps.

    Every item of --data (or each --input): scores.csv, the class maps (maps/<id>.npy) and the
    plugin's evidence files (see the README)."""
    if (data is None) == (not input_):
        raise ValueError("give --data or --input (one of them)")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if input_ and set_:
        raise ValueError("--set applies to --data only")
    refuse_data_files(input_ or [], "predict")
    prepare_out(out, overwrite)
    predictor = Predictor(checkpoint, device=device, which=which)
    if data is not None:
        examples, bad = predictor.read_data(data, options=parse_sets(set_), skip_bad=skip_bad)
    else:
        examples, bad = predictor.read_inputs(input_)
        if bad and not skip_bad:
            first = bad[0]
            raise ValueError(f"{first.name}: {first.reason} (pass --skip-bad to go on)")
    console = Console(stderr=True, quiet=quiet)
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("predict", total=len(examples))

        def tracked():
            for prediction in predictor.predictions(
                examples, batch_size=batch_size, workers=workers, bad=bad if skip_bad else None
            ):
                progress.advance(task)
                yield prediction

        count, files = write_predictions(predictor, tracked(), out, bad)
    Console(quiet=quiet).print(f"predicted {count} items into {out} ({len(files)} files)")
    if bad:  # items left out: said even when quiet, as training says it
        Console(stderr=True).print(
            f"[yellow]{len(bad)} bad item(s) not predicted, listed in {out / 'bad_items.json'}"
        )
