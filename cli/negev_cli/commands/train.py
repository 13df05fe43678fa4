"""``negev train``: train a model of a modality on a dataset or on its built-in demo data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from negev.engine import RunConfig, load_toml, resolve_config, train
from negev.nn import LOSSES, POOLINGS
from negev.plugins import ModalityPlugin
from negev_cli.errors import friendly_errors


def _default(option: str) -> str:
    """`` (default: ...)`` for an option of RunConfig: plugins may set their own."""
    return f" (default: the plugin's, else {RunConfig.__dataclass_fields__[option].default})"


def _pool_default(param: str) -> str:
    """Which poolings take ``param`` and their defaults (``weldon 0.2, wildcat 0.2``)."""
    shown = ", ".join(
        f"{e.name} {e.defaults[param]}" for e in POOLINGS.entries() if param in e.defaults
    )
    return f" Only for the poolings taking it; default: the plugin's, else the pooling's ({shown})."


POOLING_HELP = "; ".join(
    f"{e.name} = {e.summary}" + (f" ({', '.join(e.defaults)})" if e.defaults else "")
    for e in POOLINGS.entries()
)
LOSS_HELP = "; ".join(f"{e.name} = {e.summary}" for e in LOSSES.entries())


def parse_count(value: str | None) -> float | int | None:
    """A k option: an int count ("3") or a fraction ("0.2")."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"k must be a number, got {value!r}") from None
    return int(number) if number >= 1 and number == int(number) else number


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """``--set key=value`` plugin options as text; the engine reads each value as the type the
    plugin declares for it (:mod:`negev.plugins.options`)."""
    options: dict[str, str] = {}
    for item in values or []:
        if "=" not in item:
            raise ValueError(f"--set needs key=value, got {item!r}")
        key, raw = item.split("=", 1)
        options[key.strip()] = raw.strip()
    return options


def resolve_run(config: Path | None, cli: dict[str, Any]) -> tuple[ModalityPlugin, RunConfig]:
    """The plugin and run config of a command: the options given on the command line (the ones
    left at None are not given) over those of the TOML ``config`` file, over the defaults."""
    given = {key: value for key, value in cli.items() if value is not None}
    return resolve_config(load_toml(config) if config else {}, given)


@friendly_errors
def train_command(
    modality: str = typer.Option(None, "--modality", "-m", help="Modality plugin name."),
    data: str = typer.Option(None, help="Dataset path or spec; the built-in demo data if omitted."),
    out: str = typer.Option(None, help="Run directory (checkpoints, metrics.jsonl)."),
    config: Path = typer.Option(None, help="TOML file whose keys mirror these options."),
    epochs: int = typer.Option(None, help=f"Training epochs{_default('epochs')}."),
    batch_size: int = typer.Option(None, help=f"Global batch size{_default('batch_size')}."),
    lr: float = typer.Option(None, help=f"Learning rate{_default('lr')}."),
    weight_decay: float = typer.Option(None, help=f"Weight decay{_default('weight_decay')}."),
    optimizer: str = typer.Option(
        None, help=f"adamw or sgd (momentum 0.9){_default('optimizer')}."
    ),
    pooling: str = typer.Option(None, help=f"{POOLING_HELP}{_default('pooling')}."),
    kmax: str = typer.Option(
        None, help=f"k+: a count of regions or a fraction in (0, 1).{_pool_default('kmax')}"
    ),
    kmin: str = typer.Option(
        None, help=f"k-: a count or a fraction (None: k+).{_pool_default('kmin')}"
    ),
    alpha: float = typer.Option(
        None, help=f"Weight of the negative evidence.{_pool_default('alpha')}"
    ),
    num_maps: int = typer.Option(None, help=f"Maps per class (WILDCAT's M){_default('num_maps')}."),
    pool_each_map: bool = typer.Option(
        None,
        "--pool-each-map/--pool-mean-map",
        help="Pool each of a class's maps on its own and average their scores (an ensemble of "
        "M detectors), or pool their mean map (WILDCAT; default: the plugin's, else the mean).",
    ),
    beta_pos: float = typer.Option(
        None, help=f"Sharpness of the high term.{_pool_default('beta_pos')}"
    ),
    beta_neg: float = typer.Option(
        None, help=f"Sharpness of the low term.{_pool_default('beta_neg')}"
    ),
    attention_dim: int = typer.Option(
        None, help=f"Gated attention's hidden size L.{_pool_default('attention_dim')}"
    ),
    query_dim: int = typer.Option(
        None, help=f"DSMIL's query vector size E.{_pool_default('query_dim')}"
    ),
    loss: str = typer.Option(
        None,
        help=f"{LOSS_HELP} (default: the plugin's, else bce on multi-label data, ce otherwise).",
    ),
    seed: int = typer.Option(None, help=f"Random seed{_default('seed')}."),
    device: str = typer.Option(None, help=f"cpu, cuda, cuda:1, ...{_default('device')}."),
    skip_bad: bool = typer.Option(
        None, "--skip-bad/--no-skip-bad", help="Go on without unreadable items (reported)."
    ),
    weights: str = typer.Option(
        None, help="Local file of pretrained encoder weights (plugins that take them)."
    ),
    monitor: str = typer.Option(
        None, help="Validation metric that picks the best checkpoint (default: mAP or accuracy)."
    ),
    patience: int = typer.Option(None, help="Stop after this many epochs without improvement."),
    start_margin: float = typer.Option(
        None,
        help="A trained epoch replaces the convex warm start (epoch 0) only when ahead on "
        "validation by this many bootstrap standard errors, raised for the number of epochs "
        f"compared (Bonferroni){_default('start_margin')}.",
    ),
    refit: bool = typer.Option(
        None,
        "--refit/--no-refit",
        help="When the warm start is kept, refit it on train + val as the best (default: yes).",
    ),
    threads: int = typer.Option(None, help="Torch intra-op CPU threads (recorded in the run)."),
    workers: int = typer.Option(
        None, help="DataLoader worker processes (default: from the CPU count; 0: in-process)."
    ),
    precision: str = typer.Option(
        None, help=f"fp32, bf16 or fp16 (autocast of the encoder){_default('precision')}."
    ),
    backbone_lr_mult: float = typer.Option(
        None,
        help=f"Encoder learning rate = lr x this, the head's is lr{_default('backbone_lr_mult')}.",
    ),
    warmup_epochs: float = typer.Option(
        None, help=f"Linear learning-rate warm-up, in epochs{_default('warmup_epochs')}."
    ),
    accumulate: int = typer.Option(
        None, help=f"Batches whose gradients make one step{_default('accumulate')}."
    ),
    clip_grad: float = typer.Option(None, help="Clip the gradient norm to this value."),
    decay_norms_biases: bool = typer.Option(
        None,
        "--decay-norms-biases/--no-decay-norms-biases",
        help="Weight decay on normalisation weights and biases too (default: yes).",
    ),
    keep: int = typer.Option(
        None, help="Checkpoints kept besides the best (default 2): a resume falls back on them."
    ),
    set_: list[str] = typer.Option(None, "--set", help="Plugin option key=value (repeatable)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace the run already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a negative-evidence model; writes checkpoints and metrics.jsonl to --out."""
    cli = {
        "modality": modality,
        "data": data,
        "out": out,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "optimizer": optimizer,
        "pooling": pooling,
        "kmax": parse_count(kmax),
        "kmin": parse_count(kmin),
        "alpha": alpha,
        "num_maps": num_maps,
        "pool_each_map": pool_each_map,
        "beta_pos": beta_pos,
        "beta_neg": beta_neg,
        "attention_dim": attention_dim,
        "query_dim": query_dim,
        "loss": loss,
        "seed": seed,
        "device": device,
        "skip_bad": skip_bad,
        "weights": weights,
        "monitor": monitor,
        "patience": patience,
        "start_margin": start_margin,
        "refit": refit,
        "threads": threads,
        "workers": workers,
        "precision": precision,
        "backbone_lr_mult": backbone_lr_mult,
        "warmup_epochs": warmup_epochs,
        "accumulate": accumulate,
        "clip_grad": clip_grad,
        "decay_norms_biases": decay_norms_biases,
        "keep": keep,
        "plugin": parse_sets(set_),
    }
    plugin, run_config = resolve_run(config, cli)
    result = train(plugin, run_config, resume=resume, overwrite=overwrite, quiet=quiet)
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        lines = [f"test: {shown}"] if result.metrics else []
        if result.best_epoch is not None:
            value = f"{result.best_value:.4f}"
            lines.append(f"best epoch {result.best_epoch} (val {result.monitor} {value})")
        Console().print("\n".join([*lines, f"run directory: {result.run_dir}"]))
