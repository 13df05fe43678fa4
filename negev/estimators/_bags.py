"""Bags of region features for the scikit-learn estimators: validation and packing.

Bags are kept packed, as one table of the valid regions of every bag in bag order (the form of
a MIL data set: a row per instance): padding every bag to the longest would cost n x R x d for
N regions (Musk2: 102 bags of 1 to 1,044 instances, 6,598 in all, padded to 106,488 rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_packed(X, mask=None, *, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate bags of region features and return them packed.

    Args:
        X: (n_samples, n_regions, d) array (``mask`` then marks the valid regions), or a
            sequence of (n_regions_i, d) arrays, one per bag (sizes may differ).
        mask: (n_samples, n_regions) bool or None (all valid); only with a 3-D array.
        n_features: the d seen in ``fit``, checked when given.

    Returns:
        regions (N, d) float64, the valid regions of bag 0, then of bag 1, ...; and lengths
        (n_samples,) int64, each bag's number of valid regions (N = lengths.sum()).

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
        arrays = [bag[keep] for bag, keep in zip(bags, valid, strict=True)]
        positions = [np.flatnonzero(keep) for keep in valid]
    elif isinstance(X, Sequence) or (isinstance(X, np.ndarray) and X.dtype == object):
        if mask is not None:
            raise ValueError("mask is only for a 3-D array X; a list of bags needs none")
        arrays = _two_d(list(X))
        positions = [np.arange(len(a)) for a in arrays]
    else:
        raise ValueError(f"X must be a 3-D array or a list of 2-D bags, got {type(X).__name__}")
    if not arrays:
        raise ValueError("X has no bag")
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        raise ValueError(f"bags have different feature counts: {sorted(widths)}")
    width = widths.pop()
    if n_features is not None and width != n_features:
        raise ValueError(f"X has {width} features per region, fit saw {n_features}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(f"bag {int(empty[0])} has no valid region ({empty.size} such bags)")
    for index, array in enumerate(arrays):
        bad = ~np.isfinite(array)
        if bad.any():
            region = positions[index][np.argwhere(bad)[0][0]]
            raise ValueError(f"bag {index} region {region} has NaN or infinite features")
    return np.concatenate(arrays), lengths


def _two_d(bags: list) -> list[np.ndarray]:
    arrays = []
    for index, bag in enumerate(bags):
        array = np.asarray(bag, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"bag {index} must be 2-D (n_regions, n_features), got {array.shape}")
        arrays.append(array)
    return arrays


def padded_index(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) bag lengths -> index (n, R) int64 of each bag's regions in the packed table (0 in
    the padding) and valid (n, R) bool, R = the longest bag."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    positions = np.arange(int(lengths.max()))
    valid = positions[None, :] < lengths[:, None]
    return np.where(valid, starts[:, None] + positions[None, :], 0), valid
