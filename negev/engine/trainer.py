"""One training engine for every modality: seeded, resumable, data parallel, parallel input
pipeline, mixed precision, model selection on validation, with progress."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

import negev
from negev.engine.checkpoint import (
    REFIT,
    RunWarning,
    append_line,
    clear_run,
    has_checkpoint,
    holds_run,
    load_checkpoint,
    metrics_json,
    read_best,
    save_checkpoint,
    save_refit,
    write_best,
    write_file,
)
from negev.engine.config import POOL_PARAMS, RunConfig, default_workers
from negev.engine.data import BatchLoader, ItemKey, item_seed
from negev.engine.distributed import World, init_world
from negev.engine.evaluation import classification_metrics, evidence_metrics, predict
from negev.engine.lock import RunLock
from negev.engine.model import EvidenceModel, build_model
from negev.engine.objectives import Objective, default_loss
from negev.engine.precision import autocast, grad_scaler
from negev.engine.recipe import build_optimizer, build_scheduler
from negev.engine.selection import beats_reference, family_margin
from negev.engine.warm_start import applies, fit_row_weights, linear_warm_start
from negev.errors import CheckpointError, ConfigError, DataError
from negev.nn import POOLINGS
from negev.plugins import BadItem, DataSplits, Example, ModalityPlugin, get_plugin, plugin_version
from negev.plugins.options import ignored_options, parse_options, plugin_table

__all__ = [
    "DataError",
    "TrainResult",
    "check_plugin_options",
    "load_model",
    "monitor_name",
    "prepare_data",
    "refuse_ignored_options",
    "resolve_config",
    "train",
]

METRICS = "metrics.jsonl"
# options that change how a model is trained, not its parameters: a resumed run may change them
TRAINING_OPTIONS = frozenset(
    ("out", "data", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "loss", "seed",
     "device", "skip_bad", "monitor", "patience", "workers", "precision", "threads",
     "backbone_lr_mult", "warmup_epochs", "accumulate", "clip_grad", "decay_norms_biases",
     "keep", "start_margin", "refit")
)  # fmt: skip
#: options that define the head: a resume refuses to change them even where the weights would
#: load (``pool_each_map``, k or alpha change the model without changing a shape)
HEAD_OPTIONS = ("pooling", "num_maps", "pool_each_map", *POOL_PARAMS)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run directory.
        metrics: test metrics of the best model (``{}`` when the test split was not evaluated,
            and on ranks other than 0 under torchrun).
        best_epoch, best_value: the epoch (1-based; 0 is the convex warm start,
            :mod:`negev.engine.warm_start`) kept as ``best`` and its monitored value.
        monitor: the validation metric that picked it.
        val_metrics: every validation metric of that epoch.
        val_scores: that epoch's class scores (N, C) float32 on the validation split, in the
            split's order (None when no epoch was kept, on ranks other than 0, and after a
            resume unless the kept epoch is the warm start).
    """

    run_dir: Path
    metrics: dict[str, float]
    best_epoch: int | None = None
    best_value: float | None = None
    monitor: str | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    val_scores: Tensor | None = None


def monitor_name(config: RunConfig, multilabel: bool) -> str:
    """The validation metric that selects the best checkpoint (``config.monitor``, a ``val_``
    prefix allowed; by default ``mAP`` for multi-label data and ``accuracy`` otherwise)."""
    name = (config.monitor or ("mAP" if multilabel else "accuracy")).removeprefix("val_")
    known = ("mAP", "roc_auc", "accuracy") if multilabel else ("accuracy", "macro_f1", "roc_auc")
    if name not in known:
        kind = "multi-label" if multilabel else "single-label"
        choices = ", ".join(known)
        raise ConfigError(f"monitor must be one of {choices} for {kind} data, got {name!r}")
    return name


def _better(value: float, best: float | None) -> bool:
    """Higher is better; NaN (a metric undefined on this validation split) never wins."""
    return best is None or (not math.isnan(value) and (math.isnan(best) or value > best))


def resolve_config(
    file_options: dict[str, Any], cli_options: dict[str, Any]
) -> tuple[ModalityPlugin, RunConfig]:
    """Find the plugin, then merge its defaults, the config file and the command line."""
    modality = cli_options.get("modality") or file_options.get("modality")
    if not modality:
        raise ConfigError("no modality given (--modality or 'modality' in the config file)")
    plugin = get_plugin(modality)
    sets = cli_options.get("plugin") or {}
    cli_options = {k: v for k, v in cli_options.items() if k != "plugin"}
    config = RunConfig.build(plugin.default_config(), file_options, cli_options)
    config.plugin = plugin_table(plugin, config.plugin, sets)
    check_plugin_options(plugin, config)
    return plugin, config


def check_plugin_options(plugin: ModalityPlugin, config: RunConfig) -> None:
    """Refuse options the plugin cannot honour (``weights`` for a plugin that takes none)."""
    if config.weights and not plugin.takes_weights:
        refused = f"the {plugin.name} plugin takes no pretrained weights"
        raise ValueError(f"weights: {refused}, got {config.weights!r}")


def refuse_ignored_options(
    plugin: ModalityPlugin, config: RunConfig, encoders: tuple[str, ...] = ()
) -> None:
    """Refuse a plugin option set where it has no effect, as ``buckets`` of the hashed encoder
    under another (:func:`~negev.plugins.options.ignored_options`): the run would not be the
    one asked for. With several ``encoders`` (a search trying each), only an option that has no
    effect under any of them (``layers`` of the message-passing encoder is fine when it is
    tried)."""
    if plugin.options_class is None:
        return
    owner = f"{plugin.name} plugin"
    tried = [{"encoder": e} for e in encoders] if len(encoders) > 1 else [{}]
    ignored = [
        ignored_options(
            parse_options(plugin.options_class, {**config.plugin, **encoder}, owner=plugin.name),
            owner,
        )
        for encoder in tried
    ]
    everywhere = sorted(set.intersection(*(set(found) for found in ignored)))
    if everywhere:
        tries = f" (the search tries encoder {', '.join(encoders)})" if len(tried) > 1 else ""
        raise ValueError("; ".join(ignored[0][name] for name in everywhere) + tries)


def load_plugin_state(plugin: ModalityPlugin, state: dict[str, Any], config: RunConfig) -> None:
    """``plugin.load_state(state, config)``, or ``load_state(state)`` for a plugin whose
    override takes no config (written for the first contract)."""
    if len(inspect.signature(plugin.load_state).parameters) > 1:
        plugin.load_state(state, config.to_dict())
    else:
        plugin.load_state(state)


def prepare_data(
    plugin: ModalityPlugin,
    config: RunConfig,
    run_dir: Path | None,
    required: tuple[str, ...] = ("train", "val", "test"),
    *,
    check_classes: bool = False,
    labelled: bool = True,
) -> DataSplits:
    """Load the data; bad items are listed and saved in any case, and stop the run unless
    ``skip_bad`` or the data is the plugin's built-in demo (whose bad items are part of it).
    The ``required`` splits must not be empty; with ``check_classes`` (training) the training
    split must hold classes to tell apart (a warning for a constant class, and for a
    validation split that cannot rank classes apart, where ``run_dir`` is given: once, by the
    process that writes the run). ``labelled=False`` (prediction): the
    plugin reads the items without their labels (``config["labelled"]``, see
    :meth:`~negev.plugins.ModalityPlugin.load_data`)."""
    data = plugin.load_data(config.data, {**config.to_dict(), "labelled": labelled})
    usable = len(data.train) + len(data.val) + len(data.test)
    if data.bad:
        listing = bad_listing(data.bad)
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            report = [{"item": b.name, "reason": b.reason} for b in data.bad]
            write_file(run_dir / "bad_items.json", json.dumps(report, indent=2) + "\n")
        if not usable:
            where = f" (all in {run_dir}/bad_items.json)" if run_dir is not None else ""
            raise DataError(f"no usable item: all {len(data.bad)} items are bad{where}: {listing}")
        if not config.skip_bad and not data.builtin:
            raise DataError(
                f"{len(data.bad)} bad item(s): {listing}. Fix them, or pass --skip-bad "
                "to go on without them"
            )
    source = config.data or f"the {plugin.name} demo"
    for split in required:
        if not getattr(data, split):
            skipped = f"; {len(data.bad)} bad item(s) were left out" if data.bad else ""
            raise DataError(
                f"the {split} split of {source} is empty ({_sizes(data)}{skipped}): where the "
                "data names each item's split, it needs train, val and test items"
            )
    if check_classes:
        _check_classes(data, source, warn=run_dir is not None)
        if run_dir is not None:
            _check_validation_classes(data, source)
    return data


def _check_classes(data: DataSplits, source: str, warn: bool) -> None:
    """Refuse a training split with nothing to tell apart: single-label, fewer than two classes
    present; multi-label, no class both present and absent (a task all 0 or all 1 teaches
    nothing; one among others is a warning)."""
    if not data.multilabel:
        held = _single_class(data.train, data.classes)
        if held:
            raise DataError(
                f"the training split of {source} holds {held} ({len(data.train)} items): there is "
                f"nothing to tell apart; check the label column (classes found: "
                f"{shown_names(data.classes)})"
            )
        return
    constant = _constant_classes(data.train, data.classes)
    if len(constant) == len(data.classes):
        raise DataError(
            f"no class of {source} has both positive and negative training items "
            f"({len(data.train)} items; classes: {shown_names(data.classes)}): there is "
            "nothing to learn; check the label columns"
        )
    if constant and warn:
        warnings.warn(
            f"class(es) {shown_names(constant)} of {source} are all positive or all negative "
            "in the training split: the model learns nothing about them and their ROC-AUC is "
            "undefined",
            RunWarning,
            stacklevel=3,
        )


def _check_validation_classes(data: DataSplits, source: str) -> None:
    """Warn of a validation split that cannot rank classes apart: single-label, fewer than two
    classes present; multi-label, no class both present and absent. Its ROC-AUC is then
    undefined (NaN), its mAP trivial and its accuracy that of always answering the one class:
    the epoch and trial kept are chosen on that."""
    if not data.val:
        return
    if data.multilabel:
        if len(_constant_classes(data.val, data.classes)) < len(data.classes):
            return
        held = "no class with both positive and negative items"
    else:
        held = _single_class(data.val, data.classes)
        if not held:
            return
    warnings.warn(
        f"the val split of {source} holds {held} ({len(data.val)} items): its ROC-AUC is "
        "undefined, its mAP trivial and its accuracy rewards answering that class, yet they "
        "choose the epoch and search trial kept; give it items of every class (a split "
        "column, or more data)",
        RunWarning,
        stacklevel=3,
    )


def _sizes(data: DataSplits) -> str:
    return f"{len(data.train)} train, {len(data.val)} val, {len(data.test)} test items"


def _single_class(examples: list[Example], classes: list[str]) -> str | None:
    """What a single-label split holds when it has fewer than two classes (``only 'pos'``, ``no
    class``), else None."""
    has = Counter(c for e in examples for c in e.labels)
    if len(has) >= 2:
        return None
    return f"only {classes[next(iter(has))]!r}" if has else "no class"


def _constant_classes(examples: list[Example], classes: list[str]) -> list[str]:
    """The classes of a multi-label split that no item has both present and absent (its
    unknown labels left out)."""
    has = Counter(c for e in examples for c in e.labels)
    unknown = Counter(c for e in examples for c in e.unknown)
    return [name for c, name in enumerate(classes) if has[c] in (0, len(examples) - unknown[c])]


def shown_names(names: list[str], most: int = 10) -> str:
    """Names (classes, columns) for a message: the first ``most``, quoted, and how many more."""
    more = f" ... and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(map(repr, names[:most])) + more


def bad_listing(bad: list[BadItem], most: int = 10) -> str:
    """Bad items for a message: the first ``most`` as ``name: reason``, and how many more."""
    more = f" (and {len(bad) - most} more)" if len(bad) > most else ""
    return "; ".join(f"{b.name}: {b.reason}" for b in bad[:most]) + more


def train(
    plugin: ModalityPlugin,
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    console: Console | None = None,
    evaluate_test: bool = True,
    evidence: bool = False,
) -> TrainResult:
    """Train (or resume) a run in ``config.out``; returns the test metrics of the best model.

    After every epoch the model is scored on the validation split; the epoch with the best
    ``monitor`` value is kept as the run's ``best`` checkpoint (beside ``latest``), and training
    stops after ``patience`` epochs without improvement; the last ``keep`` checkpoints are kept
    besides the best. A convex warm start (epoch 0) stays the best until an epoch is ahead of it
    by more than ``config.start_margin`` bootstrap standard errors, raised for the number of
    epochs compared with it (``epochs``, at most ``patience``:
    :func:`~negev.engine.selection.family_margin`); an epoch short of that counts toward
    ``patience``, and a run resumed with other ``epochs`` or ``patience`` judges its later
    epochs at their margin. A warm start kept to the end is refit on train + val
    (``config.refit``): the test metrics are then the refit model's, ``best_value`` and
    ``val_metrics`` the fit on train's. The run directory is locked for the run (another process
    writing into it fails at once, naming this one). A directory that already holds a run is
    refused unless ``resume`` (continue it from its newest readable checkpoint; a run stopped
    before its first checkpoint starts again) or ``overwrite`` (clear it first).
    ``evaluate_test=False`` never touches the test split (model selection, searches);
    ``evidence=True`` adds the plugin's evidence metrics on the test split to the same pass.

    Deterministic on the CPU for a given seed and thread count. Under ``torchrun`` every rank
    trains on its share of each global batch (``batch_size`` samples in all) and rank 0 writes
    the run directory.
    """
    console = console or Console(stderr=True, quiet=quiet)
    if resume and overwrite:
        raise ConfigError("--resume continues a run, --overwrite replaces it: give one")
    check_plugin_options(plugin, config)
    refuse_ignored_options(plugin, config)
    # the run's record reads from anywhere
    config = dataclasses.replace(config, data=_data_source(config.data))
    run_dir = Path(config.out)
    # rank 0 writes the run directory; every rank reads it before any writes (init_world waits
    # for all of them)
    main = int(os.environ.get("RANK", "0")) == 0
    with RunLock(run_dir) if main else contextlib.nullcontext():
        if not resume and not overwrite and holds_run(run_dir):
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue it or --overwrite to "
                "replace it (or choose another --out)"
            )
        if resume and not holds_run(run_dir):
            raise ConfigError(f"{run_dir} holds no run to resume")
        fresh = not resume or not has_checkpoint(run_dir)
        if resume and fresh and main:
            console.print(
                f"{run_dir} has no checkpoint yet (the run stopped before its first one): "
                "starting it again"
            )
        return _train(
            plugin, config, run_dir, fresh, console, quiet, evaluate_test, evidence
        )  # fmt: skip


def _train(
    plugin: ModalityPlugin, config: RunConfig, run_dir: Path, fresh: bool, console: Console,
    quiet: bool, evaluate_test: bool, evidence: bool,
) -> TrainResult:  # fmt: skip
    """:func:`train` in a run directory this process may write (``fresh``: clear it first)."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    world = init_world(device)
    if fresh and world.main:
        # also what a run killed while clearing, or before its first checkpoint, left
        clear_run(run_dir)
    data = prepare_data(plugin, config, run_dir if world.main else None, check_classes=True)
    if data.bad and world.main:  # a warning, not progress: shown even when quiet
        warn = Console(stderr=True)
        warn.print(
            f"[yellow]skipped {len(data.bad)} bad item(s) (all in {run_dir}/bad_items.json):"
        )
        for item in data.bad[:10]:
            warn.print(f"  {item.name}: {item.reason}", highlight=False)
    if world.main:
        console.print(
            f"data: {_sizes(data)}; {len(data.classes)} "
            f"{'multi-label ' if data.multilabel else ''}"
            f"{'class' if len(data.classes) == 1 else 'classes'}: {shown_names(data.classes)}",
            highlight=False,
        )
    objective = Objective(config.loss or default_loss(data.multilabel), data.multilabel, world)
    monitor = monitor_name(config, data.multilabel)
    num_classes = len(data.classes)
    plugin_state = plugin.fit_state(data, config.to_dict())
    load_plugin_state(plugin, plugin_state, config)

    torch.manual_seed(config.seed)
    model = build_model(plugin, config, num_classes).to(device)
    channels_last = plugin.channels_last and device.type != "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    plan = _TrainPlan(len(data.train), config, world)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, plan.steps_per_epoch)
    scaler = grad_scaler(device, config.precision)
    start_epoch, best, kept = 0, None, _Kept()
    if not fresh:
        start_epoch, best, kept = _restore(
            run_dir, plugin, config, data, model, optimizer, scheduler, scaler
        )
    elif world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_file(run_dir / METRICS, "")
    wrapped = DistributedDataParallel(model) if world.size > 1 else model
    meta = {**_meta(plugin, config, data), "plugin_state": plugin_state}
    bar_console = console if not quiet and world.main else None
    workers = default_workers() if config.workers is None else config.workers
    splits = {"train": data.train, "val": data.val}
    if evaluate_test:
        splits["test"] = data.test
    views = plugin.test_views(config.to_dict())
    loader = BatchLoader(plugin, splits, num_classes, workers, device, views, channels_last)

    def score(split: str, all_views: bool = False, keep_maps: bool = False):
        examples = getattr(data, split)
        return predict(
            model, plugin, examples, config.batch_size, device, keep_maps, loader=loader,
            split=split, all_views=all_views, precision=config.precision,
        )  # fmt: skip

    try:
        linear_start = plugin.warm_start(config.to_dict()) and applies(model)
        if fresh and getattr(model.encoder, "row_norm", False) and not linear_start:
            fit_row_weights(model, loader, len(data.train), config.batch_size)
        if fresh and (model.started or linear_start):
            best, kept = _warm_start(
                model, loader, data, config, monitor, run_dir, meta, optimizer, scheduler,
                scaler, world, console, score,
            )  # fmt: skip
        if start_epoch == 0:  # the start is saved as epoch 0 (or resumed from it): leave it
            model.begin_training(config.seed)
        margin = family_margin(config.start_margin, _start_comparisons(config))
        for epoch in range(start_epoch, config.epochs):
            if _patience_spent(config, best, epoch):
                break
            train_loss = _train_epoch(
                wrapped, optimizer, scheduler, scaler, loader, plan, config, epoch, objective,
                world, device, bar_console,
            )  # fmt: skip
            if world.main:
                scores, _ = score("val")
                val = classification_metrics(scores, data.val, num_classes, data.multilabel)
                record = {"epoch": epoch + 1, "train_loss": train_loss}
                record.update({f"val_{k}": v for k, v in val.items()})
                append_line(run_dir / METRICS, json.dumps(record))
                improved = _better(val[monitor], best and best["value"])
                at_start = best is not None and best["epoch"] == 0
                if improved and kept.start is not None and at_start:  # the one-SE rule
                    improved = beats_reference(
                        val[monitor], kept.start_value, scores, kept.start, data.val,
                        num_classes, data.multilabel, monitor, margin, config.seed,
                    )  # fmt: skip
                if improved:
                    best = {"checkpoint": f"checkpoint-{epoch + 1:04d}", "epoch": epoch + 1}
                    best.update({"monitor": monitor, "value": val[monitor], "val": val})
                    kept.best = scores
                state = {
                    "epoch": epoch,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "best": json.dumps(best),
                    **kept.state(),
                }
                save_checkpoint(
                    run_dir, epoch + 1, model, {**meta, "epoch": epoch + 1}, state,
                    best=_pointer(best) if improved else None, keep=config.keep,
                )  # fmt: skip
                shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")
                mark = " (best)" if improved else ""
                console.print(f"epoch {epoch + 1}/{config.epochs}: {shown}{mark}")
            if world.size > 1:
                best = _broadcast(best)

        if world.main and best is not None and best["epoch"] < config.epochs:
            console.print(f"kept epoch {best['epoch']}: val {monitor} {best['value']:.4f}")
        if (
            world.main
            and config.refit
            and kept.start is not None
            and (best or {}).get("epoch") == 0
        ):
            best = _refit_start(plugin, config, data, model, run_dir, meta, monitor, best, kept,
                                (workers, device, views, channels_last))  # fmt: skip
            console.print("refitted the warm start on train + val: the run's best checkpoint")
            if kept.start_c is None and evaluate_test:  # the plugin's state changed: fresh workers
                loader.close()
                loader = BatchLoader(plugin, splits, num_classes, workers, device, views,
                                     channels_last)  # fmt: skip
        metrics: dict[str, float] = {}
        if evaluate_test and world.main:
            if best is not None:
                model.load_state_dict(load_checkpoint(run_dir, which="best")["weights"])
            scores, maps = score("test", all_views=True, keep_maps=evidence)
            metrics = classification_metrics(scores, data.test, num_classes, data.multilabel)
            if evidence:
                metrics.update(
                    evidence_metrics(
                        plugin, data.test, maps, data.classes, scores, model, data.multilabel
                    )
                )
            write_file(run_dir / "final_metrics.json", metrics_json(metrics))
    finally:
        loader.close()
    if world.size > 1:
        dist.barrier()
    return TrainResult(
        run_dir,
        metrics,
        best_epoch=best and best["epoch"],
        best_value=best and best["value"],
        monitor=monitor,
        val_metrics=(best or {}).get("val", {}),
        val_scores=kept.best if best is not None else None,
    )


@dataclass
class _Kept:
    """Validation scores (N, C) the run keeps: the convex warm start's (``start``, with its
    monitored value and C; the reference of the one-SE rule, also in every checkpoint's state)
    and the best epoch's (``best``, in memory only: :attr:`TrainResult.val_scores`)."""

    start: Tensor | None = None
    start_value: float = math.nan
    best: Tensor | None = None
    start_c: float | None = None  # the C of the engine's own warm start (None: the encoder's)

    def state(self) -> dict[str, Any]:
        """What a checkpoint's state carries: the start's scores (nothing without a start)."""
        if self.start is None:
            return {}
        return {"kept_scores": {"start": self.start, "start_value": self.start_value,
                                "start_c": self.start_c}}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any], best_epoch: int | None) -> _Kept:
        """From a checkpoint's state (empty for a checkpoint written without a start); the best
        scores are the start's while the start is the best epoch."""
        kept = cls(**state.get("kept_scores", {}))
        kept.best = kept.start if best_epoch == 0 else None
        return kept


def _warm_start(
    model, loader, data, config, monitor, run_dir, meta, optimizer, scheduler, scaler, world,
    console, score,
) -> tuple[dict[str, Any] | None, _Kept]:  # fmt: skip
    """Keep a convex warm start as epoch 0, the best so far: training can only improve on it on
    validation, and by more than ``config.start_margin`` standard errors raised for the epochs
    compared (its validation scores are kept for that comparison). The start is the encoder's
    own (``model.started``: its ``init_head`` wrote a fit it carries, e.g. the bags plugin's
    bag-mean logistic regression) or else the fit of the model's linear path
    (:func:`~negev.engine.warm_start.linear_warm_start`, every rank alike).
    None when there is neither."""
    start_c = None
    if model.started:
        source = "the encoder's convex fit"
        fitted = {"warm_start": "encoder"}
    else:
        start = linear_warm_start(model, loader, data, monitor, config.batch_size, config.seed)
        if start is None:
            console.print("warm start: the training split has a single class; training from "
                          "scratch")  # fmt: skip
            return None, _Kept()
        source = f"logistic regression C={start.C:g}"
        fitted = {"warm_start_C": start.C}
        start_c = start.C
    if not world.main:
        return None, _Kept()
    scores, _ = score("val")
    val = classification_metrics(scores, data.val, len(data.classes), data.multilabel)
    record = {"epoch": 0, **fitted, **{f"val_{k}": v for k, v in val.items()}}
    append_line(run_dir / METRICS, json.dumps(record))
    best = {"checkpoint": "checkpoint-0000", "epoch": 0, "monitor": monitor,
            "value": val[monitor], "val": val}  # fmt: skip
    kept = _Kept(start=scores, start_value=val[monitor], best=scores, start_c=start_c)
    state = {
        "epoch": -1,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": torch.get_rng_state(),
        "best": json.dumps(best),
        **kept.state(),
    }
    save_checkpoint(run_dir, 0, model, {**meta, "epoch": 0}, state, best=_pointer(best),
                    keep=config.keep)  # fmt: skip
    console.print(f"epoch 0 (warm start, {source}): val {monitor} "
                  f"{val[monitor]:.4f} (best)")  # fmt: skip
    return best, kept


def _refit_start(
    plugin, config, data, model, run_dir, meta, monitor, best, kept, loading,
) -> dict[str, Any]:  # fmt: skip
    """Refit the kept warm start on train + val (:attr:`RunConfig.refit`) into ``model`` and
    write it as the run's best checkpoint (:data:`~negev.engine.checkpoint.REFIT`); returns what
    ``best.json`` now records. The encoder's own start (``model.started``) is fitted again by
    the plugin (``fit_state`` on the merged split, in the order the data lists it: its
    statistics and its inner-CV fit), the engine's own with the C chosen on validation."""
    merged = dataclasses.replace(data, train=data.train_and_val())
    model.load_state_dict(load_checkpoint(run_dir, which="best")["weights"])
    if kept.start_c is None:
        state = plugin.fit_state(merged, config.to_dict())
        load_plugin_state(plugin, state, config)
        torch.manual_seed(config.seed)
        model.load_state_dict(build_model(plugin, config, len(data.classes)).state_dict())
        meta = {**meta, "plugin_state": state}
    else:
        splits = {"train": merged.train, "val": data.val}
        loader = BatchLoader(plugin, splits, len(data.classes), *loading)
        try:
            linear_warm_start(model, loader, merged, monitor, config.batch_size, config.seed,
                              grid=(kept.start_c,))  # fmt: skip
        finally:
            loader.close()
    refit = {**_pointer(best), "refit": "train+val"}
    state = {"epoch": -1, "optimizer": {}, "scheduler": {}, "rng": torch.get_rng_state(),
             "best": json.dumps({"checkpoint": REFIT, **refit})}  # fmt: skip
    save_refit(run_dir, model, {**meta, "epoch": 0, "refit": "train+val"}, state, refit)
    return {"checkpoint": REFIT, **refit}


def _pointer(best: dict[str, Any]) -> dict[str, Any]:
    """What ``best.json`` records besides the checkpoint's name."""
    return {k: v for k, v in best.items() if k != "checkpoint"}


def _start_comparisons(config: RunConfig) -> int:
    """How many epochs can be compared with a warm start: every epoch, or, with ``patience``,
    the ``patience`` epochs after which a start still the best stops the run."""
    epochs = config.epochs if config.patience is None else min(config.epochs, config.patience)
    return max(1, epochs)


def _patience_spent(config: RunConfig, best: dict[str, Any] | None, epoch: int) -> bool:
    """Early stopping: ``patience`` epochs have passed since the best one (``epoch`` 0-based is
    the next to train)."""
    if config.patience is None or best is None:
        return False
    return epoch - best["epoch"] >= config.patience


def _broadcast(best: dict[str, Any] | None) -> dict[str, Any] | None:
    """Rank 0's view of the best epoch (the others do not validate), for early stopping."""
    box = [best]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class _TrainPlan:
    """The global batches of each epoch and this rank's share of them.

    The order of an epoch depends only on (seed, epoch), and an item's augmentation only on
    (seed, epoch, item): a resumed run sees the same batches, and every rank takes the items
    ``rank, rank + world, ...`` of each global batch, as one process would take them all.
    Batches too small to share out are skipped by every rank alike; ``accumulate`` consecutive
    batches make one optimizer step.
    """

    def __init__(self, size: int, config: RunConfig, world: World):
        self.size, self.config, self.world = size, config, world
        kept = sum(
            1
            for start in range(0, size, config.batch_size)
            if min(config.batch_size, size - start) >= world.size
        )
        self.steps_per_epoch = math.ceil(kept / config.accumulate)

    def global_batches(self, epoch: int) -> list[list[int]]:
        config = self.config
        order = torch.randperm(
            self.size, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        ).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, self.size, config.batch_size)]
        return [batch for batch in batches if len(batch) >= self.world.size]

    def keys(self, batch: list[int], epoch: int) -> list[ItemKey]:
        """This rank's share of a global batch, as item keys."""
        seed = self.config.seed
        share = batch[self.world.rank :: self.world.size]
        return [("train", i, True, item_seed(seed, epoch, i), 0) for i in share]


def _train_epoch(
    model, optimizer, scheduler, scaler, loader: BatchLoader, plan: _TrainPlan,
    config: RunConfig, epoch: int, objective: Objective, world: World,
    device: torch.device, console: Console | None,
) -> float:  # fmt: skip
    """One pass over the training split; returns the mean training loss (global batch).
    A progress bar goes to ``console`` (none if None)."""
    model.train()
    batches = plan.global_batches(epoch)
    steps = [batches[i : i + config.accumulate] for i in range(0, len(batches), config.accumulate)]
    loaded = loader.batches([plan.keys(batch, epoch) for batch in batches])
    # summed on the device, no sync per step (float64 where the device has it, as Python sums)
    wide = torch.float32 if device.type == "mps" else torch.float64
    total, count = torch.zeros((), dtype=wide, device=device), 0
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
        for step in steps:
            optimizer.zero_grad(set_to_none=True)
            items = sum(len(batch) for batch in step)
            for index, batch in enumerate(step):
                local = next(loaded)
                last = index == len(step) - 1
                # gradients are all-reduced once per step, on its last batch
                sync = contextlib.nullcontext() if last or world.size == 1 else model.no_sync()
                with sync:
                    with autocast(device, config.precision):
                        scores = model(local["inputs"]).scores
                    loss = objective(scores.float(), local["targets"], len(batch), local["known"])
                    # the step's loss: the mean over its items (the AP loss ranks each batch)
                    share = 1 / len(step) if objective.couples_samples else len(batch) / items
                    scaler.scale(loss * share).backward()
                value = loss.detach()
                if world.size > 1:
                    dist.all_reduce(value)
                    value = value / world.size
                total += value * len(batch)
                count += len(batch)
                bar.advance(task)
            if config.clip_grad is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
    return float(total) / max(count, 1)


def _meta(plugin: ModalityPlugin, config: RunConfig, data: DataSplits) -> dict[str, Any]:
    return {
        "negev_version": negev.__version__,
        "modality": plugin.name,
        "plugin_version": plugin_version(plugin.name),
        "classes": data.classes,
        "multilabel": data.multilabel,
        "config": config.to_dict(),
    }


def _data_source(data: str | None) -> str | None:
    """``data`` as a run compares it: a path that exists, whole (as runs record it)."""
    return str(Path(data).absolute()) if data and Path(data).exists() else data


def _restore(
    run_dir, plugin, config, data, model, optimizer, scheduler, scaler
) -> tuple[int, dict[str, Any] | None, _Kept]:
    """Load the newest readable checkpoint of ``run_dir`` for resuming; returns the next epoch,
    the best epoch so far and the validation scores kept (:class:`_Kept`). ``best.json`` is
    rewritten from the checkpoint's state, in case the run was killed between writing the two,
    or the resume fell back to an older one."""
    checkpoint = load_checkpoint(run_dir, with_state=True)
    meta = checkpoint["meta"]
    if meta["modality"] != plugin.name or meta["classes"] != data.classes:
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained for modality {meta['modality']!r} with "
            f"classes {meta['classes'][:5]}..., not {plugin.name!r} with {data.classes[:5]}..."
        )
    saved_config = RunConfig.build(_taken_pool_params(meta["config"]))  # as load_model reads it
    saved_config.plugin = plugin_table(plugin, saved_config.plugin, strict=False)
    saved = saved_config.to_dict()
    if _data_source(saved_config.data) != _data_source(config.data):
        warnings.warn(
            f"{run_dir} was trained on {saved_config.data or 'the demo'} and resumes on "
            f"{config.data or 'the demo'}: its best epoch so far was chosen on the other data's "
            "validation split",
            RunWarning,
            stacklevel=3,
        )
    try:
        model.load_state_dict(checkpoint["weights"])
    except RuntimeError as exc:
        changed = _model_options_changed(saved, config.to_dict())
        if not changed:
            raise ValueError(f"cannot resume {run_dir}: {_first_line(exc)}") from None
        raise _changed_on_resume(run_dir, changed) from None
    changed = _model_options_changed(saved, config.to_dict(), HEAD_OPTIONS)
    if changed:
        raise _changed_on_resume(run_dir, changed)
    state = checkpoint["state"]
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as exc:  # another set of trained parameters than this model's
        hint = (
            "; a run saved by an earlier negev whose summing pool still trained the "
            "projection's bias cannot be resumed: train it anew, or finish it with the negev "
            "that saved it (its checkpoints load for evaluation as they are)"
            if not model.head.proj.bias.requires_grad
            else ""
        )
        raise ValueError(
            f"cannot resume {run_dir}: its optimizer state does not fit the parameters trained "
            f"here ({_first_line(exc)}){hint}"
        ) from None
    scheduler.load_state_dict(state["scheduler"])
    if "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"])
    best = json.loads(state["best"]) if "best" in state else read_best(run_dir)
    kept = _Kept.from_state(state, best and best.get("epoch"))
    if kept.start is not None and kept.start.shape[0] != len(data.val):
        warnings.warn(
            f"{run_dir}: the validation split changed size since the warm start "
            f"({kept.start.shape[0]} -> {len(data.val)} items): no one-SE comparison with it",
            RunWarning,
            stacklevel=3,
        )
        kept = _Kept()
    main = not dist.is_initialized() or dist.get_rank() == 0
    if best is not None and not (run_dir / best["checkpoint"]).is_dir():
        # a resume that fell back past the epoch that became the best after it
        if main:
            warnings.warn(
                f"{run_dir}: the best checkpoint so far ({best['checkpoint']}) is gone; the best "
                f"epoch is chosen again from epoch {int(state['epoch']) + 2} on",
                RunWarning,
                stacklevel=3,
            )
        best, kept = None, _Kept()  # the start is gone with its checkpoint: a plain restart
    if best is not None and main:
        write_best(run_dir, best)
    next_epoch = int(state["epoch"]) + 1
    if main:
        _truncate_metrics(run_dir / METRICS, next_epoch)
    return next_epoch, best, kept


def _truncate_metrics(path: Path, epochs: int) -> None:
    """Keep the records of the first ``epochs`` epochs (a run killed between writing its metrics
    and its checkpoint, or resumed from an older checkpoint, wrote more); a line that is not a
    record (cut short by a kill or a full disk) is dropped with a warning naming it."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    kept, dropped = [], []
    for number, line in enumerate(lines, 1):
        try:
            epoch = json.loads(line)["epoch"]
        except (json.JSONDecodeError, KeyError, TypeError):
            dropped.append(f"{path}:{number}")
            continue
        if isinstance(epoch, int) and epoch <= epochs:
            kept.append(line)
    if dropped:
        warnings.warn(
            f"dropped unreadable metric records: {', '.join(dropped)}", RunWarning, stacklevel=4
        )
    write_file(path, "".join(line + "\n" for line in kept))


def _model_options_changed(
    saved: dict[str, Any], current: dict[str, Any], only: tuple[str, ...] | None = None
) -> str:
    """The options that may shape the model (``only`` those, when given) and differ between a
    run's saved config, as built again (options it predates at their defaults), and the current
    one, as "num_maps is 2 here, 1 in the run" (empty when none differs)."""

    def model_options(config: dict[str, Any]) -> dict[str, Any]:
        options = {k: v for k, v in config.items() if k not in TRAINING_OPTIONS | {"plugin"}}
        options.update({f"plugin.{k}": v for k, v in config.get("plugin", {}).items()})
        return options

    before, now = model_options(saved), model_options(current)
    names = sorted(before.keys() | now.keys()) if only is None else only
    return "; ".join(
        f"{name} is {now.get(name)!r} here, {before.get(name)!r} in the run"
        for name in names
        if before.get(name) != now.get(name)
    )


def _changed_on_resume(run_dir, changed: str) -> ValueError:
    return ValueError(
        f"cannot resume {run_dir}: {changed} (options that shape the model cannot change on resume)"
    )


def _first_line(exc: Exception) -> str:
    """The first informative line of a ``load_state_dict`` error (torch's runs over many)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)


def load_model(
    checkpoint: str | Path,
    device: str = "cpu",
    which: str = "best",
    options: dict[str, Any] | None = None,
) -> tuple[ModalityPlugin, RunConfig, EvidenceModel, dict[str, Any]]:
    """Rebuild a trained model from a run directory (its ``best`` or ``latest`` checkpoint) or
    a checkpoint directory (no unpickling). ``options``: plugin options (``--set`` text) that
    override the run's, checked against the plugin's options; a key of the saved table that the
    plugin no longer declares (a run saved when misspelt keys were ignored) is left out."""
    loaded = load_checkpoint(Path(checkpoint), which=which)
    meta = loaded["meta"]
    plugin = get_plugin(meta["modality"])
    config = RunConfig.build(_taken_pool_params(meta["config"]))
    config.plugin = plugin_table(plugin, config.plugin, options, strict=False)
    load_plugin_state(plugin, meta.get("plugin_state", {}), config)
    model = build_model(plugin, config, len(meta["classes"]))
    mismatch = _weights_mismatch(model.state_dict(), loaded["weights"])
    if mismatch:
        raise CheckpointError(f"incompatible checkpoint {checkpoint}: {mismatch}")
    model.load_state_dict(loaded["weights"])
    return plugin, config, model.to(torch.device(device)).eval(), meta


def _taken_pool_params(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config without the pooling parameters its pooling does not take: checkpoints
    written before the pooling registry recorded all of them (and the pooling ignored the
    others), so this rebuilds the model they hold."""
    if saved.get("pooling") not in POOLINGS:
        return saved
    taken = POOLINGS.get(saved["pooling"]).defaults
    return {k: v for k, v in saved.items() if k not in POOL_PARAMS or k in taken}


def _weights_mismatch(expected: dict[str, Tensor], weights: dict[str, Tensor]) -> str | None:
    """Why ``weights`` do not fit a model whose state dict is ``expected`` (None: they fit)."""
    missing = [k for k in expected if k not in weights]
    if missing:
        return f"{len(missing)} weight(s) missing, first {missing[0]!r}"
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        return f"{len(unexpected)} unexpected weight(s), first {unexpected[0]!r}"
    for key, tensor in expected.items():
        if weights[key].shape != tensor.shape:
            shape, want = tuple(weights[key].shape), tuple(tensor.shape)
            return f"weight {key!r} has shape {shape}, the model needs {want}"
    return None
