"""The training loss of a run: a registered loss, exact over the global batch under data
parallelism."""

from __future__ import annotations

import torch
from torch import Tensor

from negev.engine.distributed import World, gather_with_grad
from negev.errors import ConfigError
from negev.nn import create_loss

__all__ = ["Objective", "default_loss", "multi_hot"]


def default_loss(multilabel: bool) -> str:
    return "bce" if multilabel else "ce"


class Objective:
    """The loss ``name`` (:data:`negev.nn.LOSSES`) of this rank's share of a global batch.

    A per-sample loss is summed over the rank's samples and multiplied by
    ``world size / global batch size``, so that DDP's gradient averaging gives exactly the
    gradient of the global-batch mean. A loss that couples the samples (``couples_samples``, the
    AP loss ranking the batch) sees the whole global batch: scores are gathered from every rank
    with their gradient; every rank computes the same global loss, the gather's backward sums
    the ranks' gradients and DDP averages them.

    Attributes:
        name: the registered name. loss: the module. couples_samples: see above.
    """

    def __init__(self, name: str, multilabel: bool, world: World):
        loss = create_loss(name, multilabel=multilabel, reduction="sum")
        self.couples_samples = bool(getattr(loss, "couples_samples", False))
        if self.couples_samples:
            loss = create_loss(name, multilabel=multilabel, reduction="mean")
        self.name, self.loss, self.world = name, loss, world

    def __call__(
        self, scores: Tensor, targets: Tensor, global_size: int, known: Tensor | None = None
    ) -> Tensor:
        """The loss of this rank's share.

        Args:
            scores: (b, C) float class scores of this rank. targets: (b, C) float multi-hot.
            global_size: the number of samples in the global batch.
            known: (b, C) float or bool, 0 where a label is missing; None when all are known.
        """
        if known is not None and not getattr(self.loss, "supports_known", False):
            raise ConfigError(
                f"loss {self.name!r} does not support missing labels; use 'bce' or 'mantra'"
            )
        if self.couples_samples:
            every_score = gather_with_grad(scores, self.world)
            every_target = gather_with_grad(targets, self.world)
            return self.loss(every_score, every_target)
        return self.loss(scores, targets, known) * (self.world.size / global_size)


def multi_hot(labels: list[tuple[int, ...]], num_classes: int, device: torch.device) -> Tensor:
    """(B, C) float targets from each example's class indices."""
    targets = torch.zeros(len(labels), num_classes, device=device)
    for row, classes in enumerate(labels):
        targets[row, list(classes)] = 1.0
    return targets
