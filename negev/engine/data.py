"""The input pipeline: a ``torch.utils.data`` Dataset over a run's examples and one DataLoader
whose batches the engine plans.

Every item is addressed by an :data:`ItemKey` ``(split, index, train, seed, view)``; the engine
plans each pass (an epoch's global batches, this rank's share of each, a validation pass) and
the loader's workers run :meth:`~negev.plugins.ModalityPlugin.load_item` then
:meth:`~negev.plugins.ModalityPlugin.collate` on them. What a batch holds is thus a function of
its keys only: the same for any number of workers, any scheduling of them, after a resume, and
in every rank's share of a global batch. The workers persist across passes (one pool per run).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from negev.engine.objectives import multi_hot
from negev.plugins import BadItem, Example, ModalityPlugin

__all__ = ["BatchLoader", "ItemError", "ItemKey", "eval_plan", "item_seed", "to_device"]

#: (split, index in the split, training item?, seed of its augmentation, index of its view)
ItemKey = tuple[str, int, bool, int, int]


class ItemError(ValueError):
    """An item failed in the input pipeline (``name: reason``), e.g. a file corrupted since the
    dataset was read."""


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of an item's augmentation: a function of (run seed, epoch, item) only."""
    return hash((seed, epoch, index)) & 0x7FFF_FFFF_FFFF_FFFF


class _ExampleDataset(Dataset):
    """``dataset[key]`` = the example of ``key`` through ``plugin.load_item``, or a
    :class:`BadItem` naming it when that raises (reported by the training process, not as a
    worker traceback)."""

    def __init__(
        self, plugin: ModalityPlugin, splits: dict[str, Sequence[Example]], views: list[dict]
    ):
        self.plugin, self.splits, self.views = plugin, splits, views

    def __len__(self) -> int:
        return sum(len(examples) for examples in self.splits.values())

    def __getitem__(self, key: ItemKey) -> Example | BadItem:
        split, index, train, seed, view = key
        example = self.splits[split][index]
        try:
            return self.plugin.load_item(
                example,
                train=train,
                generator=torch.Generator().manual_seed(seed),
                view=self.views[view] or None,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of one item is reported by name
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            return BadItem(example.name, reason.removeprefix(f"{example.name}: "))


class _Collate:
    """Items -> ``{"inputs": plugin.collate(items), "targets": (B, C), "known": (B, C) or
    None}``; ``{"bad": [BadItem, ...]}`` when an item failed."""

    def __init__(self, plugin: ModalityPlugin, num_classes: int):
        self.plugin, self.num_classes = plugin, num_classes

    def __call__(self, items: list[Example | BadItem]) -> dict[str, Any]:
        bad = [item for item in items if isinstance(item, BadItem)]
        if bad:
            return {"bad": bad}
        cpu = torch.device("cpu")
        known = None
        if any(e.unknown for e in items):
            known = 1 - multi_hot([e.unknown for e in items], self.num_classes, cpu)
        try:
            inputs = self.plugin.collate(items)
        except Exception as exc:  # noqa: BLE001 - reported with the batch's items, in one line
            names = ", ".join(e.name for e in items[:3]) + (", ..." if len(items) > 3 else "")
            return {"bad": [BadItem(f"the batch of {names}", f"{type(exc).__name__}: {exc}")]}
        return {
            "inputs": inputs,
            "targets": multi_hot([e.labels for e in items], self.num_classes, cpu),
            "known": known,
        }


class _Plan(Sampler[list[ItemKey]]):
    """A batch sampler that yields the batches set for the next pass."""

    def __init__(self) -> None:
        self.batches: list[list[ItemKey]] = []

    def __iter__(self) -> Iterator[list[ItemKey]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class BatchLoader:
    """Batches of a run's examples on ``device``, loaded by ``workers`` processes (0: here).

    Args:
        splits: the examples, by split name. views: the evaluation views
            (:meth:`~negev.plugins.ModalityPlugin.test_views`); view 0 is the plain item.
        channels_last: put 4-D float inputs in the channels_last memory format.
    """

    def __init__(
        self,
        plugin: ModalityPlugin,
        splits: dict[str, Sequence[Example]],
        num_classes: int,
        workers: int,
        device: torch.device,
        views: list[dict] | None = None,
        channels_last: bool = False,
    ):
        self.device, self.channels_last = device, channels_last
        self.views = views or [{}]
        self.plan = _Plan()
        self.loader = DataLoader(
            _ExampleDataset(plugin, splits, self.views),
            batch_sampler=self.plan,
            collate_fn=_Collate(plugin, num_classes),
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=2 if workers > 0 else None,
            # the workers' base seed comes from here, not from the global generator: loading
            # never changes the training process's random state
            generator=torch.Generator().manual_seed(0),
        )

    def batches(
        self,
        plan: list[list[ItemKey]],
        failed: list[tuple[list[ItemKey], list[BadItem]]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The batches of ``plan`` (lists of item keys), in order, on the device; each also
        holds its ``"keys"``.

        Args:
            failed: where a batch with an item that failed goes, as (its keys, the bad items),
                instead of raising (the batch is then skipped).

        Raises:
            ItemError: naming the first item that failed to load, when ``failed`` is None.
        """
        if not plan:
            return
        self.plan.batches = plan
        for keys, batch in zip(plan, self.loader, strict=True):
            if "bad" in batch:
                if failed is not None:
                    failed.append((keys, batch["bad"]))
                    continue
                item = batch["bad"][0]
                first = (item.reason.strip().splitlines() or ["failed"])[0]
                raise ItemError(f"{item.name}: {first}")
            yield {**to_device(batch, self.device, self.channels_last), "keys": keys}

    def close(self) -> None:
        """Stop the worker processes."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader._iterator = None


def eval_plan(split: str, count: int, batch_size: int, view: int = 0) -> list[list[ItemKey]]:
    """Keys of a pass over ``split`` in order, without augmentation."""
    return [
        [(split, i, False, 0, view) for i in range(start, min(start + batch_size, count))]
        for start in range(0, count, batch_size)
    ]


def to_device(inputs: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor of a (possibly nested) dict/list/tuple to ``device`` (asynchronously
    from pinned memory), 4-D float tensors in channels_last if asked."""
    if isinstance(inputs, Tensor):
        moved = inputs.to(device, non_blocking=inputs.is_pinned())
        if channels_last and moved.dim() == 4 and moved.is_floating_point():
            moved = moved.contiguous(memory_format=torch.channels_last)
        return moved
    if isinstance(inputs, dict):
        return {k: to_device(v, device, channels_last) for k, v in inputs.items()}
    if isinstance(inputs, list | tuple):
        return type(inputs)(to_device(v, device, channels_last) for v in inputs)
    return inputs
