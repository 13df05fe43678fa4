"""Argument and input validation shared by the pooling functions.

Every check raises :class:`ValueError` naming the argument (and the batch index where it applies),
so that a bad call is fixed from the message alone.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor


def check_count(name: str, k: float | int, *, allow_zero: bool) -> None:
    """Validate a region count ``k``: an int >= 0, or a float fraction in (0, 1).

    Floats >= 1 must be integral (``2.0`` is 2 regions); a float in (0, 1) is a fraction of the
    valid regions of each sample.
    """
    if isinstance(k, bool) or not isinstance(k, Real):
        raise ValueError(f"{name} must be an int or a float, got {type(k).__name__}")
    if not math.isfinite(k):
        raise ValueError(f"{name} must be finite, got {k}")
    if k < 0:
        raise ValueError(f"{name} must be >= 0, got {k}")
    if k == 0 and not allow_zero:
        raise ValueError(f"{name} must be > 0, got {k}")
    if k >= 1 and k != int(k):
        raise ValueError(f"{name} must be an integer count or a fraction in (0, 1), got {k}")


def check_finite_number(name: str, value: float) -> None:
    """Validate that a hyper-parameter (alpha, beta) is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")


def check_wildcat_args(kmax: float | int, kmin: float | int | None, alpha: float) -> None:
    """Validate WILDCAT's ``kmax`` (> 0), ``kmin`` (>= 0; None means kmax) and ``alpha``."""
    check_count("kmax", kmax, allow_zero=False)
    check_count("kmin", kmax if kmin is None else kmin, allow_zero=True)
    check_finite_number("alpha", alpha)


def flatten_regions(scores: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Check shapes and flatten the region dimensions.

    Args:
        scores: (B, C, *regions) floating point.
        mask: (B, *regions) bool, True marks a valid region, or None.

    Returns:
        scores as (B, C, N) and mask as (B, N) bool (or None), N = prod(regions).
    """
    if not isinstance(scores, Tensor):
        raise ValueError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() < 3:
        raise ValueError(
            f"scores must have shape (B, C, *regions) with at least one region dim, "
            f"got shape {tuple(scores.shape)}"
        )
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating point tensor, got dtype {scores.dtype}")
    batch, classes = scores.shape[:2]
    if math.prod(scores.shape[2:]) == 0:
        raise ValueError(f"scores has no region: shape {tuple(scores.shape)}")
    flat = scores.reshape(batch, classes, -1)
    if mask is None:
        return flat, None
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.shape != (batch, *scores.shape[2:]):
        raise ValueError(
            f"mask must have shape (B, *regions) = {(batch, *scores.shape[2:])} "
            f"to match scores {tuple(scores.shape)}, got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = valid region), not {mask.dtype}")
    if mask.device != scores.device:
        raise ValueError(f"mask is on {mask.device} but scores are on {scores.device}")
    flat_mask = mask.reshape(batch, -1)
    return flat, flat_mask


def count_valid(
    flat_mask: Tensor | None,
    batch: int,
    regions: int,
    device: torch.device,
    *,
    validate_args: bool = True,
) -> Tensor:
    """Number of valid regions per sample, (B,) int64; raises if a sample has none (checked only
    with ``validate_args``: the check reads the counts on the host)."""
    if flat_mask is None:
        return torch.full((batch,), regions, dtype=torch.long, device=device)
    counts = flat_mask.sum(dim=1)
    if not validate_args:
        return counts
    empty = (counts == 0).nonzero().flatten()
    if empty.numel() > 0:
        raise ValueError(
            f"mask has no valid region for batch index {empty.tolist()[:10]}: "
            "every sample needs at least one True region"
        )
    return counts


def resolve_count(k: float | int, valid: Tensor) -> Tensor:
    """Per-sample number of regions for a count ``k`` (see :func:`check_count`).

    Args:
        k: int count, or float fraction in (0, 1).
        valid: (B,) int64 number of valid regions per sample.

    Returns:
        (B,) int64: ``min(k, valid)`` for a count, ``max(1, round(k * valid))`` for a fraction.
    """
    if 0 < k < 1:
        return torch.round(valid.double() * k).long().clamp_(min=1)
    return valid.clamp(max=int(k))


def raise_if_nan(selected: Tensor, what: str = "scores") -> None:
    """Raise when a selected top value is NaN (NaN sorts above every number, so it is selected).

    Args:
        selected: (B, C, k) values picked by a top-k over the valid regions.
    """
    bad = torch.isnan(selected).any(dim=-1).nonzero()
    if bad.numel() > 0:
        b, c = bad[0].tolist()
        raise ValueError(
            f"{what} contain NaN in a valid region of batch index {b}, class {c} "
            f"({bad.shape[0]} (sample, class) pairs affected)"
        )


def check_binary(targets: Tensor, name: str = "targets") -> None:
    """Raise unless every value of ``targets`` (any shape, any dtype) is 0 or 1: one host read,
    none for a bool tensor."""
    if targets.dtype == torch.bool:
        return
    bad = ~((targets == 0) | (targets == 1))
    if bool(bad.any()):
        position = bad.nonzero()[0].tolist()
        value = targets[tuple(position)].item()
        where = f"row {position[0]}, column {position[1]}" if len(position) == 2 else position
        raise ValueError(f"{name} must be 0 or 1, got {value} at {where}")


def check_class_indices(targets: Tensor, num_classes: int) -> None:
    """Raise unless the (N,) integer ``targets`` are class indices in [0, num_classes): one host
    read."""
    bad = (targets < 0) | (targets >= num_classes)
    if bool(bad.any()):
        index = int(bad.nonzero()[0])
        raise ValueError(
            f"targets[{index}] = {int(targets[index])} is not a class index in [0, {num_classes})"
        )


def check_one_hot(targets: Tensor) -> None:
    """Raise unless every row of the (N, C) ``targets`` is one-hot (a single 1, the rest 0): one
    host read."""
    binary = (targets == 0) | (targets == 1) if targets.dtype != torch.bool else None
    bad = targets.sum(1) != 1
    if binary is not None:
        bad = bad | ~binary.all(1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise ValueError(
            f"targets row {row} = {targets[row].tolist()} is not one-hot: a single-label loss "
            "takes one-hot rows or class indices"
        )


def score_columns(
    scores: Tensor, targets: Tensor, *, finite: bool, validate_args: bool = True
) -> tuple[Tensor, Tensor]:
    """Validate ranking inputs and view them as columns.

    Args:
        scores: (N,) or (N, C) float. targets: same shape, values in {0, 1} (any dtype).
        finite: reject infinite scores too (NaN is always rejected).
        validate_args: check the values (targets in {0, 1}, scores finite or free of NaN): host
            reads; False checks the shapes only (a target other than 1 then counts as 0).

    Returns:
        scores as (N, C) (a view, gradient kept) and targets as (N, C) bool on the same device.
    """
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise ValueError("scores must be a floating point torch.Tensor")
    if scores.dim() not in (1, 2):
        raise ValueError(f"scores must have shape (N,) or (N, C), got {tuple(scores.shape)}")
    if not isinstance(targets, Tensor) or targets.shape != scores.shape:
        got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a tensor of shape {tuple(scores.shape)}, got {got}")
    if scores.shape[0] == 0:
        raise ValueError("scores has no row (N = 0)")
    matrix = scores if scores.dim() == 2 else scores.unsqueeze(1)
    labels = targets.to(matrix.device)
    labels = labels if labels.dim() == 2 else labels.unsqueeze(1)
    if not validate_args:
        return matrix, labels if labels.dtype == torch.bool else labels == 1
    check_binary(labels)
    labels = labels if labels.dtype == torch.bool else labels == 1
    values = matrix.detach()
    good = torch.isfinite(values) if finite else ~torch.isnan(values)
    if not bool(good.all()):
        row, col = (~good).nonzero()[0].tolist()
        kind = "finite" if finite else "free of NaN"
        raise ValueError(
            f"scores must be {kind}, got {values[row, col].item()} at row {row}, column {col}"
        )
    return matrix, labels
