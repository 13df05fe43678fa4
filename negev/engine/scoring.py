"""Evaluating a trained run: the one API behind ``negev evaluate`` and the benchmarks."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from negev.engine.checkpoint import RunWarning, find_checkpoint
from negev.engine.data import BatchLoader
from negev.engine.evaluation import classification_metrics, evidence_metrics, predict
from negev.engine.trainer import bad_listing, load_model, prepare_data, shown_names
from negev.errors import ConfigError, DataError
from negev.plugins import BadItem, DataSplits, Example

__all__ = ["Evaluation", "evaluate"]

SPLITS = ("train", "val", "test", "all")


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the metrics, which split (``all``: every item of the
    data), how many items, the checkpoint evaluated, and the data's bad items (left out under
    ``skip_bad``)."""

    metrics: dict[str, float]
    split: str
    items: int
    checkpoint: Path
    bad: list[BadItem] = field(default_factory=list)


def evaluate(
    run: str | Path,
    split: str | None = None,
    data: str | None = None,
    *,
    which: str = "best",
    device: str = "cpu",
    batch_size: int | None = None,
    workers: int = 0,
    options: dict[str, Any] | None = None,
    skip_bad: bool = False,
    evidence: bool = True,
) -> Evaluation:
    """Classification metrics (and the plugin's evidence metrics, where the data has ground
    truth) of a run's ``best`` (or ``latest``) checkpoint.

    Args:
        run: a run directory or a checkpoint directory.
        split: ``train``, ``val``, ``test`` or ``all``. Default: ``test`` of the run's own data,
            and ``all`` of other ``data`` (an external test set is scored whole).
        data: a dataset path or spec of the run's modality (default: the run's own data).
        options: plugin options that override the run's (e.g. the image plugin's test-time
            ``test_scales`` / ``test_flip``); the plugin's test-time views are averaged.
        workers: DataLoader worker processes (0: in this process).
        skip_bad: go on without the data's unreadable items (else they are an error).
    """
    split = split or ("test" if data is None else "all")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    # resolved once: one warning if it falls back
    checkpoint = find_checkpoint(Path(run), which)
    plugin, config, model, meta = load_model(checkpoint, device, options=options)
    if data is not None:
        config.data = data
    elif config.data and Path(config.data).is_absolute() and not Path(config.data).exists():
        raise DataError(
            f"the run's data, {config.data} (as recorded when it was trained), is not here: "
            "pass --data"
        )
    config.skip_bad = skip_bad
    splits = prepare_data(plugin, config, None, required=() if split == "all" else (split,))
    examples = splits.train + splits.val + splits.test if split == "all" else getattr(splits, split)
    bad = list(splits.bad)
    if splits.classes != meta["classes"]:
        examples, outside = _as_model_classes(
            examples, splits, meta["classes"], meta["multilabel"], plugin.classes_are_columns
        )
        if outside and not skip_bad:
            raise DataError(
                f"{len(outside)} item(s) cannot be scored against the model's classes: "
                f"{bad_listing(outside, 5)}. Pass --skip-bad (skip_bad=True) to evaluate the others"
            )
        bad += outside
        evidence = False  # the ground truth's class indices are the data's, not the model's
    if not examples:
        raise DataError(f"no item to evaluate in {config.data or 'the demo data'}")
    target = torch.device(device)
    channels_last = plugin.channels_last and target.type != "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    num_classes = len(meta["classes"])
    views = plugin.test_views(config.to_dict())
    loader = BatchLoader(
        plugin, {split: examples}, num_classes, workers, target, views, channels_last
    )
    try:
        scores, maps = predict(
            model, plugin, examples, batch_size or config.batch_size, target, evidence,
            loader=loader, split=split, precision=config.precision,
        )  # fmt: skip
    finally:
        loader.close()
    metrics = classification_metrics(scores, examples, num_classes, meta["multilabel"])
    if evidence:
        metrics.update(
            evidence_metrics(
                plugin, examples, maps, meta["classes"], scores, model, meta["multilabel"]
            )
        )
    return Evaluation(metrics, split, len(examples), checkpoint, bad)


def _as_model_classes(
    examples: list[Example],
    data: DataSplits,
    classes: list[str],
    multilabel: bool,
    columns: bool,
) -> tuple[list[Example], list[BadItem]]:
    """The examples with their labels as indices of the model's ``classes`` (the data may hold
    some of them, in another order, or others), and the items that cannot be scored.

    Single-label: an item labelled with a class the model does not have, or with several, is
    such an item. Multi-label: a class the model does not have is not evaluated (a warning names
    it); a model class the data lacks is absent from every item, or unknown on every item where
    the classes are the data's ``columns`` (:attr:`ModalityPlugin.classes_are_columns`)."""
    index = {name: i for i, name in enumerate(classes)}
    extra = [name for name in data.classes if name not in index]
    if multilabel and extra:
        warnings.warn(
            f"class(es) {shown_names(extra)} of the data are not classes of the model: not "
            "evaluated",
            RunWarning,
            stacklevel=3,
        )
    unseen = [i for i, name in enumerate(classes) if name not in data.classes]
    missing = tuple(unseen) if multilabel and columns else ()  # else absent: a negative
    kept, outside = [], []
    for example in examples:
        names = [data.classes[c] for c in example.labels]
        if not multilabel and any(name not in index for name in names):
            unknown = next(name for name in names if name not in index)
            reason = f"label {unknown!r} is not a class of the model ({shown_names(classes)})"
            outside.append(BadItem(example.name, reason))
            continue
        if not multilabel and len(names) != 1:
            reason = (
                f"{len(names)} labels ({shown_names(names)}); the model gives each item one class"
            )
            outside.append(BadItem(example.name, reason))
            continue
        labels = tuple(sorted(index[name] for name in names if name in index))
        unknown = {index[data.classes[c]] for c in example.unknown if data.classes[c] in index}
        unknown.update(missing)
        kept.append(dataclasses.replace(example, labels=labels, unknown=tuple(sorted(unknown))))
    return kept, outside
