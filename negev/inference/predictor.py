"""A trained run as a predictor: class scores and evidence maps of new items, in batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from negev.engine.config import RunConfig
from negev.engine.data import BatchLoader, ItemError, eval_plan
from negev.engine.model import EvidenceModel
from negev.engine.precision import autocast
from negev.engine.trainer import DataError, load_model, prepare_data
from negev.plugins import BadItem, Example, ModalityPlugin
from negev.plugins.render import UniqueStems

__all__ = ["ItemPrediction", "Prediction", "Predictor", "load"]

_SPLIT = "items"


@dataclasses.dataclass
class ItemPrediction:
    """One item's class scores and evidence, on the CPU.

    Attributes:
        example: the item as the plugin read it (labels cleared).
        id: a file-name stem unique within one prediction (sanitised from ``example.name``).
        scores: (C,) float32 class scores (logits).
        maps: (C, *regions) float32 class maps, at the region grid of the item's batch (a plugin
            with a variable region count pads its batches: see ``mask``).
        mask: (*regions) bool, True on the regions the item has, or None (all of them).
    """

    example: Example
    id: str
    scores: Tensor
    maps: Tensor
    mask: Tensor | None


class Prediction(NamedTuple):
    """What :meth:`Predictor.predict` returns: ``scores`` (N, C) float32 and ``maps``, one
    (C, *regions) float32 tensor per item (masked regions of a padded batch hold NaN)."""

    scores: Tensor
    maps: list[Tensor]


class Predictor:
    """A run's ``best`` (or ``latest``) model ready to score new items: see :func:`load`.

    Attributes:
        plugin, config, model, meta: what :func:`negev.engine.load_model` rebuilt.
        classes: the class names. multilabel: whether the run's data was multi-label.
        device: where the model runs.
    """

    def __init__(self, run: str | Path, *, device: str = "cpu", which: str = "best"):
        self.run, self.which = Path(run), which
        self.device = torch.device(device)
        loaded = load_model(run, device, which)
        self.plugin: ModalityPlugin = loaded[0]
        self.config: RunConfig = loaded[1]
        self.model: EvidenceModel = loaded[2]
        self.meta: dict[str, Any] = loaded[3]
        self.classes: list[str] = list(self.meta["classes"])
        self.multilabel = bool(self.meta["multilabel"])
        # as evaluation: image trunks in channels_last on accelerators
        self.channels_last = self.plugin.channels_last and self.device.type != "cpu"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    # -- reading -----------------------------------------------------------------------------
    def read_inputs(self, items: Sequence[str | Example]) -> tuple[list[Example], list[BadItem]]:
        """Items given as paths or literals (read by the plugin's ``read_input``) or as
        :class:`Example` s; an item that cannot be read becomes a :class:`BadItem`.

        Raises:
            TypeError: for a single string (a sequence of characters): pass ``[item]``.
        """
        _refuse_string(items)
        examples, bad = [], []
        for item in items:
            if isinstance(item, Example):
                examples.append(item)
                continue
            if not isinstance(item, str | PathLike):  # None, NaN from a pandas column, a number
                reason = f"an item is a path or a literal, got {type(item).__name__} {item!r:.40}"
                bad.append(BadItem(f"item {len(examples) + len(bad) + 1}", reason))
                continue
            try:
                examples.append(self.plugin.read_input(item))
            except ValueError as exc:
                bad.append(BadItem(str(item), str(exc)))
        return examples, bad

    def read_data(
        self, data: str | None, *, options: dict[str, Any] | None = None, skip_bad: bool = False
    ) -> tuple[list[Example], list[BadItem]]:
        """Every item of a dataset the plugin reads (all its splits, in the order the data lists
        them; labels are not read: a file without a label column will do, where the plugin's format
        allows it), or of the plugin's demo for ``data=None``.
        Bad items stop it unless ``skip_bad``."""
        config = dataclasses.replace(self.config, data=data, skip_bad=skip_bad)
        config.plugin = {**self.config.plugin, **(options or {})}
        splits = prepare_data(self.plugin, config, None, required=(), labelled=False)
        examples = splits.listed(splits.train + splits.val + splits.test)
        if not examples:
            raise DataError(f"no item to predict in {data or 'the demo data'}")
        return examples, list(splits.bad)

    # -- predicting --------------------------------------------------------------------------
    def predictions(
        self,
        examples: Sequence[Example],
        *,
        batch_size: int | None = None,
        workers: int = 0,
        bad: list[BadItem] | None = None,
    ) -> Iterator[ItemPrediction]:
        """Each item's :class:`ItemPrediction`, batch after batch, through the engine's
        DataLoader path (``workers`` processes; 0: here).

        Args:
            bad: where items that fail to load go (they are then skipped): an item is blamed
                alone, the other items of its batch are predicted again one by one. None: the
                first one raises :class:`~negev.engine.DataError`, naming it.
        """
        examples = [dataclasses.replace(e, labels=(), unknown=()) for e in examples]
        ids = _ids(examples)
        plan = eval_plan(_SPLIT, len(examples), batch_size or self.config.batch_size)
        loader = BatchLoader(
            self.plugin, {_SPLIT: examples}, len(self.classes), workers, self.device,
            channels_last=self.channels_last,
        )  # fmt: skip
        try:
            if bad is None:
                try:
                    yield from self._pass(loader, plan, examples, ids, None)
                except ItemError as exc:
                    raise DataError(f"{exc}. Pass --skip-bad to go on without it") from None
                return
            failed: list[tuple[list, list[BadItem]]] = []
            yield from self._pass(loader, plan, examples, ids, failed)
            blamed = [items for keys, items in failed if len(keys) == 1]
            again = [[key] for keys, _ in failed if len(keys) > 1 for key in keys]
            retried: list[tuple[list, list[BadItem]]] = []
            yield from self._pass(loader, again, examples, ids, retried)
            found = [item for items in blamed + [items for _, items in retried] for item in items]
        finally:
            loader.close()
        bad.extend(found)

    @torch.no_grad()
    def _pass(self, loader, plan, examples, ids, failed) -> Iterator[ItemPrediction]:
        """The items of ``plan`` (batches of keys): encoder under the run's autocast, head in
        float32 (as :class:`~negev.engine.model.EvidenceModel`), apart so that the mask comes
        too; failed batches go to ``failed`` (see :meth:`BatchLoader.batches`)."""
        for batch in loader.batches(plan, failed):
            with autocast(self.device, self.config.precision):
                features, mask = self.model.encoder(batch["inputs"])
            scores, maps = self.model.head(features.float(), mask)
            scores, maps = scores.float().cpu(), maps.float().cpu()
            mask = None if mask is None else mask.cpu()
            for row, key in enumerate(batch["keys"]):
                index = key[1]
                item_mask = None if mask is None else mask[row]
                item_maps = maps[row]
                if item_mask is not None:
                    item_maps = item_maps.masked_fill(~item_mask, float("nan"))
                yield ItemPrediction(examples[index], ids[index], scores[row], item_maps, item_mask)

    def predict(
        self, items: Sequence[str | Example], *, batch_size: int | None = None
    ) -> Prediction:
        """Class scores (N, C) and evidence maps of ``items`` (paths or literals as on the
        command line, or :class:`Example` s), in their order.

        Raises:
            DataError: when an item cannot be read or loaded (naming it).
            TypeError: for a single string: pass ``[item]``.
        """
        examples, bad = self.read_inputs(items)
        if bad:
            raise DataError(f"{bad[0].name}: {bad[0].reason}")
        if not examples:
            return Prediction(torch.zeros(0, len(self.classes)), [])
        by_id = {p.id: p for p in self.predictions(examples, batch_size=batch_size)}
        ordered = [by_id[stem] for stem in _ids(examples)]
        return Prediction(torch.stack([p.scores for p in ordered]), [p.maps for p in ordered])

    def decision(self, scores: Tensor) -> list[str]:
        """The class names decided from one item's (C,) scores: every class scored > 0
        (probability > 0.5) for multi-label runs, else the top class.

        Raises:
            ValueError: for scores of another shape (a batch's (N, C): one row at a time).
        """
        if tuple(scores.shape) != (len(self.classes),):
            raise ValueError(
                f"decision takes one item's scores, shape ({len(self.classes)},), got "
                f"{tuple(scores.shape)}: for a batch's (N, C) scores, call it per row"
            )
        if self.multilabel:
            return [name for name, s in zip(self.classes, scores.tolist(), strict=True) if s > 0]
        return [self.classes[int(scores.argmax())]]

    def explain(
        self, item: str, out_dir: str | Path | None = None, *, overwrite: bool = False
    ) -> Any:
        """:func:`negev.engine.explain` of one item under this run's checkpoint (rendered into
        ``out_dir``, default ``<run>/explanations``; ``overwrite``: into one that holds files
        already, replacing those of the same names); returns its
        :class:`~negev.engine.Explanation`."""
        from negev.engine.explanation import explain

        device = str(self.device)
        return explain(self.run, [item], out_dir, which=self.which, device=device,
                       overwrite=overwrite)[0]  # fmt: skip


def _ids(examples: Sequence[Example]) -> list[str]:
    """The items' :attr:`ItemPrediction.id` s, in order."""
    stems = UniqueStems()
    return [stems(e.name) for e in examples]


def load(run: str | Path, *, device: str = "cpu", which: str = "best") -> Predictor:
    """A trained run (a run directory or a checkpoint directory) as a :class:`Predictor`.

    >>> predictor = negev.load("runs/digits")                       # doctest: +SKIP
    >>> scores, maps = predictor.predict(["a.png", "b.png"])         # doctest: +SKIP
    """
    return Predictor(run, device=device, which=which)


def _refuse_string(items: object) -> None:
    """A bare string is a sequence of characters: each would be scored as an item."""
    if isinstance(items, str | bytes):
        raise TypeError(
            f"items must be a list of items, got the string {items[:40]!r}: pass [item] for one"
        )
