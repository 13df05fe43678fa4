"""One training engine for every modality: seeded, resumable, data parallel, with progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

import negev
from negev.engine.checkpoint import load_checkpoint, save_checkpoint
from negev.engine.config import RunConfig
from negev.engine.distributed import World, init_world
from negev.engine.evaluation import classification_metrics, predict, to_device
from negev.engine.model import EvidenceModel, build_model
from negev.engine.objectives import default_loss, multi_hot, training_loss
from negev.plugins import DataSplits, ModalityPlugin, get_plugin

__all__ = ["DataError", "TrainResult", "load_model", "prepare_data", "resolve_config", "train"]

METRICS = "metrics.jsonl"


class DataError(ValueError):
    """The dataset has items that cannot be used."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory and the final test metrics."""

    run_dir: Path
    metrics: dict[str, float]


def resolve_config(
    file_options: dict[str, Any], cli_options: dict[str, Any]
) -> tuple[ModalityPlugin, RunConfig]:
    """Find the plugin, then merge its defaults, the config file and the command line."""
    modality = cli_options.get("modality") or file_options.get("modality")
    if not modality:
        raise ValueError("no modality given (--modality or 'modality' in the config file)")
    plugin = get_plugin(modality)
    config = RunConfig.build(plugin.default_config(), file_options, cli_options)
    return plugin, config


def prepare_data(plugin: ModalityPlugin, config: RunConfig, run_dir: Path | None) -> DataSplits:
    """Load the data; bad items are listed and saved in any case, and stop the run unless
    ``skip_bad`` or the data is the plugin's built-in demo (whose bad items are part of it)."""
    data = plugin.load_data(config.data, config.to_dict())
    if data.bad:
        listing = "; ".join(f"{b.name}: {b.reason}" for b in data.bad[:10])
        more = f" (and {len(data.bad) - 10} more)" if len(data.bad) > 10 else ""
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            report = [{"item": b.name, "reason": b.reason} for b in data.bad]
            (run_dir / "bad_items.json").write_text(json.dumps(report, indent=2) + "\n")
        if not config.skip_bad and not data.builtin:
            raise DataError(
                f"{len(data.bad)} bad item(s): {listing}{more}. Fix them, or pass --skip-bad "
                "to go on without them"
            )
    for split in ("train", "val", "test"):
        if not getattr(data, split):
            raise DataError(f"the {split} split is empty")
    return data


def train(
    plugin: ModalityPlugin,
    config: RunConfig,
    *,
    resume: bool = False,
    quiet: bool = False,
    console: Console | None = None,
) -> TrainResult:
    """Train (or resume) a run in ``config.out``; returns the test metrics of the final model.

    Deterministic on the CPU for a given seed. Under ``torchrun`` every rank trains on its share
    of each global batch (``batch_size`` samples in all) and rank 0 writes the run directory.
    """
    console = console or Console(stderr=True, quiet=quiet)
    run_dir = Path(config.out)
    device = torch.device(config.device)
    world = init_world(device)
    data = prepare_data(plugin, config, run_dir if world.main else None)
    if data.bad and world.main:  # a warning, not progress: shown even when quiet
        warn = Console(stderr=True)
        warn.print(
            f"[yellow]skipped {len(data.bad)} bad item(s) (all in {run_dir}/bad_items.json):"
        )
        for item in data.bad[:10]:
            warn.print(f"  {item.name}: {item.reason}", highlight=False)
    loss_name = config.loss or default_loss(data.multilabel)
    num_classes = len(data.classes)
    plugin_state = plugin.fit_state(data, config.to_dict())
    plugin.load_state(plugin_state)

    torch.manual_seed(config.seed)
    model = build_model(plugin, config, num_classes).to(device)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    start_epoch = 0
    if resume:
        start_epoch = _restore(run_dir, plugin, config, data, model, optimizer, scheduler)
    elif world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / METRICS).write_text("")
    wrapped = DistributedDataParallel(model) if world.size > 1 else model
    meta = {**_meta(plugin, config, data), "plugin_state": plugin_state}
    bar_console = console if not quiet and world.main else None

    for epoch in range(start_epoch, config.epochs):
        train_loss = _train_epoch(
            wrapped, optimizer, plugin, config, data, epoch, loss_name, world, device, bar_console
        )
        scheduler.step()
        if world.main:
            scores, _ = predict(model, plugin, data.val, config.batch_size, device)
            val = classification_metrics(scores, data.val, num_classes, data.multilabel)
            record = {"epoch": epoch + 1, "train_loss": train_loss}
            record.update({f"val_{k}": v for k, v in val.items()})
            with open(run_dir / METRICS, "a") as file:
                file.write(json.dumps(record) + "\n")
            state = {
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
            }
            save_checkpoint(run_dir, epoch + 1, model, {**meta, "epoch": epoch + 1}, state)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")
            console.print(f"epoch {epoch + 1}/{config.epochs}: {shown}")
        if world.size > 1:
            dist.barrier()

    scores, _ = predict(model, plugin, data.test, config.batch_size, device)
    metrics = classification_metrics(scores, data.test, num_classes, data.multilabel)
    if world.main:
        (run_dir / "final_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(run_dir, metrics)


def _train_epoch(
    model, optimizer, plugin, config, data, epoch, loss_name, world: World, device, console
) -> float:
    """One pass over the training split; returns the mean training loss (global batch).
    A progress bar goes to ``console`` (none if None)."""
    model.train()
    # The order of an epoch depends only on (seed, epoch): a resumed run sees the same batches.
    order = torch.randperm(
        len(data.train), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    ).tolist()
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    total, count = 0.0, 0
    bar = Progress(
        TextColumn(f"epoch {epoch + 1}/{config.epochs}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=console is None or not console.is_terminal,
    )
    with bar:
        task = bar.add_task("train", total=len(batches))
        for batch in batches:
            if len(batch) < world.size:  # too small to share out: every rank skips it alike
                bar.advance(task)
                continue
            examples = [data.train[i] for i in batch[world.rank :: world.size]]
            inputs = to_device(plugin.collate(examples), device)
            targets = multi_hot([e.labels for e in examples], len(data.classes), device)
            known = None
            if any(e.unknown for e in examples):
                known = 1 - multi_hot([e.unknown for e in examples], len(data.classes), device)
            scores = model(inputs).scores
            loss = training_loss(
                loss_name, scores, targets, data.multilabel, world, len(batch), known
            )
            model.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.detach()
            if world.size > 1:
                dist.all_reduce(value)
                value = value / world.size
            total += float(value) * len(batch)
            count += len(batch)
            bar.advance(task)
    return total / max(count, 1)


def _optimizer(model: EvidenceModel, config: RunConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _meta(plugin: ModalityPlugin, config: RunConfig, data: DataSplits) -> dict[str, Any]:
    version = "unknown"
    for entry in metadata.entry_points(group="negev.modalities", name=plugin.name):
        if entry.dist is not None:
            version = entry.dist.version
    return {
        "negev_version": negev.__version__,
        "modality": plugin.name,
        "plugin_version": version,
        "classes": data.classes,
        "multilabel": data.multilabel,
        "config": config.to_dict(),
    }


def _restore(run_dir, plugin, config, data, model, optimizer, scheduler) -> int:
    """Load the latest checkpoint of ``run_dir`` for resuming; returns the next epoch."""
    checkpoint = load_checkpoint(run_dir, with_state=True)
    meta = checkpoint["meta"]
    if meta["modality"] != plugin.name or meta["classes"] != data.classes:
        raise ValueError(
            f"cannot resume {run_dir}: it was trained for modality {meta['modality']!r} with "
            f"classes {meta['classes'][:5]}..., not {plugin.name!r} with {data.classes[:5]}..."
        )
    model.load_state_dict(checkpoint["weights"])
    state = checkpoint["state"]
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    next_epoch = int(state["epoch"]) + 1
    # drop metrics of epochs after the checkpoint (a run killed between the two writes)
    lines = (run_dir / METRICS).read_text().splitlines() if (run_dir / METRICS).exists() else []
    kept = [line for line in lines if json.loads(line)["epoch"] <= next_epoch]
    (run_dir / METRICS).write_text("".join(line + "\n" for line in kept))
    return next_epoch


def load_model(
    checkpoint: str | Path, device: str = "cpu"
) -> tuple[ModalityPlugin, RunConfig, EvidenceModel, dict[str, Any]]:
    """Rebuild a trained model from a run or checkpoint directory (no unpickling)."""
    loaded = load_checkpoint(Path(checkpoint))
    meta = loaded["meta"]
    plugin = get_plugin(meta["modality"])
    config = RunConfig.build(meta["config"])
    plugin.load_state(meta.get("plugin_state", {}))
    model = build_model(plugin, config, len(meta["classes"]))
    try:
        model.load_state_dict(loaded["weights"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise ValueError(f"incompatible checkpoint {checkpoint}: {first[0].strip()}") from exc
    return plugin, config, model.to(torch.device(device)).eval(), meta
