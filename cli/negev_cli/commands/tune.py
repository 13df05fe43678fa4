"""``negev tune``: pick a model on the validation split (Optuna search), then score test once."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from negev_cli.commands.train import parse_sets, resolve_run
from negev_cli.errors import friendly_errors


@friendly_errors
def tune_command(
    modality: str = typer.Option(None, "--modality", "-m", help="Modality plugin name."),
    data: str = typer.Option(None, help="Dataset path or spec; the built-in demo data if omitted."),
    out: str = typer.Option(None, help="Run directory (trials/, trials.jsonl, the chosen model)."),
    config: Path = typer.Option(None, help="TOML file: the first trial and the fixed options."),
    trials: int = typer.Option(20, help="Number of trials (training runs)."),
    timeout: float = typer.Option(None, help="Start no trial after this many seconds."),
    encoders: str = typer.Option(
        None, help="Plugin encoders to try, comma-separated (default: the plugin's choices)."
    ),
    epochs: int = typer.Option(None, help="Most epochs of a trial."),
    patience: int = typer.Option(
        None, help="Early stopping of a trial (default: a quarter of the epochs)."
    ),
    start_margin: float = typer.Option(
        None,
        help="A trial replaces the first (the options as given) only when ahead on validation "
        "by this many bootstrap standard errors, raised for the number of trials compared "
        "(Bonferroni; default 1; also each trial's rule against its warm start).",
    ),
    refit: bool = typer.Option(
        None,
        "--refit/--no-refit",
        help="A trial that keeps its warm start refits it on train + val (default: yes).",
    ),
    batch_size: int = typer.Option(None, help="Global batch size."),
    monitor: str = typer.Option(
        None, help="Validation metric to maximise (default: mAP or accuracy)."
    ),
    seed: int = typer.Option(None, help="Seed of the data split, the trials and the sampler."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1, ..."),
    threads: int = typer.Option(None, help="Torch intra-op CPU threads."),
    workers: int = typer.Option(None, help="DataLoader worker processes (0: in-process)."),
    skip_bad: bool = typer.Option(
        None, "--skip-bad/--no-skip-bad", help="Go on without unreadable items (reported)."
    ),
    set_: list[str] = typer.Option(None, "--set", help="Plugin option key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace the run already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Pick a model on the validation split (Optuna), then score test once.

    Searches encoder, pooling (k, alpha, beta), learning rate and weight decay; the chosen model
    becomes the run's best checkpoint."""
    from negev.engine.search import search  # imports Optuna: only when tuning

    cli = {
        "modality": modality,
        "data": data,
        "out": out,
        "epochs": epochs,
        "batch_size": batch_size,
        "start_margin": start_margin,
        "refit": refit,
        "monitor": monitor,
        "seed": seed,
        "device": device,
        "threads": threads,
        "workers": workers,
        "skip_bad": skip_bad,
        "plugin": parse_sets(set_),
    }
    plugin, run_config = resolve_run(config, cli)
    chosen = None if encoders is None else tuple(e.strip() for e in encoders.split(",") if e)
    result = search(
        plugin, run_config, trials=trials, timeout=timeout, encoders=chosen, patience=patience,
        overwrite=overwrite, quiet=quiet,
    )  # fmt: skip
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    Console().print(
        f"test: {shown}\nchosen trial {result.best.number} (val {result.monitor} "
        f"{result.best.value:.4f}) of {len(result.trials)}: {result.run_dir}/trials.md\n"
        f"run directory: {result.run_dir}"
    )
