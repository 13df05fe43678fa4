"""Bags of region features for the scikit-learn estimators: validation and padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_bags(X, mask=None, *, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate bags of region features and return them padded, with their region mask.

    Args:
        X: (n_samples, n_regions, d) array (``mask`` then marks the valid regions), or a
            sequence of (n_regions_i, d) arrays, one per bag (sizes may differ).
        mask: (n_samples, n_regions) bool or None (all valid); only with a 3-D array.
        n_features: the d seen in ``fit``, checked when given.

    Returns:
        X as (n_samples, max_regions, d) float64 (padding = 0) and mask (n_samples,
        max_regions) bool.

    Raises:
        ValueError: wrong ndim, NaN or infinite features in a valid region, a bag without valid
            region, a feature count different from ``fit``'s. The message names the bag.
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        bags = np.asarray(X, dtype=np.float64)
        if bags.ndim != 3:
            raise ValueError(
                f"X must be 3-D (n_samples, n_regions, n_features) or a list of 2-D bags, "
                f"got an array of shape {bags.shape}"
            )
        if mask is None:
            valid = np.ones(bags.shape[:2], dtype=bool)
        else:
            valid = np.asarray(mask)
            if valid.shape != bags.shape[:2] or valid.dtype != bool:
                raise ValueError(
                    f"mask must be a bool array of shape {bags.shape[:2]}, got "
                    f"{valid.dtype} {valid.shape}"
                )
    elif isinstance(X, Sequence) or (isinstance(X, np.ndarray) and X.dtype == object):
        if mask is not None:
            raise ValueError("mask is only for a 3-D array X; a list of bags needs none")
        bags, valid = _pad(list(X))
    else:
        raise ValueError(f"X must be a 3-D array or a list of 2-D bags, got {type(X).__name__}")
    if bags.shape[0] == 0:
        raise ValueError("X has no bag")
    if n_features is not None and bags.shape[2] != n_features:
        raise ValueError(f"X has {bags.shape[2]} features per region, fit saw {n_features}")
    empty = np.flatnonzero(~valid.any(axis=1))
    if empty.size:
        raise ValueError(f"bag {int(empty[0])} has no valid region ({empty.size} such bags)")
    bad = ~np.isfinite(bags) & valid[:, :, None]
    if bad.any():
        bag, region, _ = np.argwhere(bad)[0]
        raise ValueError(f"bag {bag} region {region} has NaN or infinite features")
    return np.where(valid[:, :, None], bags, 0.0), valid


def _pad(bags: list) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for index, bag in enumerate(bags):
        array = np.asarray(bag, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"bag {index} must be 2-D (n_regions, n_features), got {array.shape}")
        arrays.append(array)
    if not arrays:
        raise ValueError("X has no bag")
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        raise ValueError(f"bags have different feature counts: {sorted(widths)}")
    longest = max(a.shape[0] for a in arrays)
    padded = np.zeros((len(arrays), longest, widths.pop()))
    valid = np.zeros((len(arrays), longest), dtype=bool)
    for index, array in enumerate(arrays):
        padded[index, : len(array)] = array
        valid[index, : len(array)] = True
    return padded, valid
