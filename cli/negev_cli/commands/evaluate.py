"""``negev evaluate``: metrics of a trained model on a split of its data or another dataset."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from negev.engine import classification_metrics, load_model, predict
from negev.engine.trainer import prepare_data
from negev_cli.errors import friendly_errors


@friendly_errors
def evaluate_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint directory."),
    data: str = typer.Option(None, help="Dataset path or spec (default: the run's own data)."),
    split: str = typer.Option("test", help="train, val or test."),
    out: Path = typer.Option(None, help="JSON file for the metrics (default: in the run)."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
) -> None:
    """Classification metrics, plus the plugin's evidence metrics where the data has ground
    truth; prints a table and writes JSON."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    plugin, config, model, meta = load_model(checkpoint, device)
    if data is not None:
        config.data = data
    splits = prepare_data(plugin, config, None)
    if splits.classes != meta["classes"]:
        raise ValueError(
            f"the data has classes {splits.classes[:8]}, the model was trained on "
            f"{meta['classes'][:8]}"
        )
    examples = getattr(splits, split)
    scores, maps = predict(model, plugin, examples, config.batch_size, torch.device(device), True)
    metrics = classification_metrics(scores, examples, len(meta["classes"]), meta["multilabel"])
    metrics.update(plugin.evidence_metrics(examples, maps, meta["classes"], scores))
    table = Table(title=f"{meta['modality']} · {split} · {len(examples)} items")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    Console().print(table)
    target = out or Path(checkpoint) / f"evaluation_{split}.json"
    target.write_text(json.dumps(metrics, indent=2) + "\n")
    Console().print(f"wrote {target}")
