"""``negev export``: a trained model as one graph, collated inputs -> (scores, maps)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from negev.inference import Predictor
from negev.inference.export import FORMATS, export
from negev_cli.errors import friendly_errors

SAMPLES = 8


@friendly_errors
def export_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    format_: str = typer.Option(..., "--format", help=f"One of {', '.join(FORMATS)}."),
    out: Path = typer.Option(..., help="File to write (.onnx, .pt2 or .pt)."),
    input_: list[str] = typer.Option(
        None,
        "--input",
        "-i",
        help=f"Sample items to trace (two or more; default: the first {SAMPLES} of the run's "
        "data).",
    ),
    which: str = typer.Option("best", help="Checkpoint of a run directory: best or latest."),
    overwrite: bool = typer.Option(False, help="Replace --out if it exists."),
) -> None:
    """Export a trained model as one graph, collated inputs -> (scores, maps).

    Dynamic batch, and dynamic region count where the modality has one."""
    if format_ not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {format_!r}")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} exists: pass --overwrite to replace it")
    predictor = Predictor(checkpoint, which=which)
    if input_:
        examples, bad = predictor.read_inputs(input_)
        if bad:
            raise ValueError(f"{bad[0].name}: {bad[0].reason}")
    else:  # the run's own data (the plugin's demo for a demo run)
        examples = predictor.read_data(predictor.config.data, skip_bad=True)[0][:SAMPLES]
    export(predictor, out, format_, examples)
    Console().print(f"wrote {out} ({format_})")
