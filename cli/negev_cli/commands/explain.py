"""``negev explain``: the positive and negative evidence of each class for given inputs."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from rich.console import Console
from torch import Tensor

from negev.engine import load_model
from negev.engine.evaluation import to_device
from negev_cli.errors import friendly_errors


@friendly_errors
def explain_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    input_: list[str] = typer.Option(..., "--input", "-i", help="An item (path or literal)."),
    out: Path = typer.Option(None, help="Where the rendered evidence goes."),
    top: int = typer.Option(3, help="Regions listed per class and sign."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
) -> None:
    """Render each class's evidence (files) and list the top regions in the terminal."""
    plugin, _, model, meta = load_model(checkpoint, device)
    classes = meta["classes"]
    out_dir = out or Path(checkpoint) / "explanations"
    console = Console()
    for text in input_:
        example = plugin.read_input(text)
        inputs = to_device(plugin.collate([example]), torch.device(device))
        with torch.no_grad():  # encoder and head apart: the mask also gives the kept regions
            features, mask = model.encoder(inputs)
            result = model.head(features, mask)
        scores, maps = result.scores[0].cpu(), result.maps[0].cpu()
        files = plugin.render_evidence(
            example, maps, scores, classes, out_dir, selected=_selection(model, result.maps, mask)
        )
        names = plugin.region_names(example)
        console.print(f"[bold]{example.name}[/bold]")
        for c, name in enumerate(classes):
            flat = maps[c].reshape(-1)
            regions = [i for i, n in enumerate(names) if n is not None] if names else None
            values = flat[regions] if regions is not None else flat
            k = min(top, values.numel())

            def listing(ranks: list[int], values=values, regions=regions, names=names) -> str:
                return ", ".join(
                    f"{names[regions[r]] if regions else r} ({float(values[r]):+.2f})"
                    for r in ranks
                )

            high = listing(values.topk(k).indices.tolist())
            low = listing(values.topk(k, largest=False).indices.tolist())
            score = f"{float(scores[c]):+.3f}"
            console.print(f"  {name}: score {score}  [green]+ {high}[/green]  [red]- {low}[/red]")
        for path in files:
            console.print(f"  wrote {path}")


def _selection(model, maps: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """The (high, low) regions the model's pooling keeps for the one item of ``maps``
    (1, C, *regions), as (C, *regions) bool masks on the CPU; None for a pooling without a hard
    selection."""
    pool = model.head.pool
    if not hasattr(pool, "selection"):
        return None
    high, low = pool.selection(maps, mask)
    return high[0].cpu(), low[0].cpu()
