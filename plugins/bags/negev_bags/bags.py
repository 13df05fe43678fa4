"""Bags of instance features: one bag in memory or in a file (``.pt``, ``.npy``, ``.h5``).

A bag is ``features`` (n, d) float32, one row per instance (a slide's tiles, a molecule's
conformations), with optional ``coords`` (n, 2) (a tile's position on the slide). Files:

* ``.pt``: a tensor (n, d), or a dict with ``features`` and optionally ``coords`` (read with
  ``torch.load(weights_only=True)``: never unpickles code);
* ``.npy``: an array (n, d) (``allow_pickle=False``; memory-mapped until used);
* ``.h5``: datasets ``features`` (n, d) and optionally ``coords`` (n, 2), the CLAM / Trident
  layout (a leading axis of size 1, ``(1, n, d)``, is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_INSTANCES", "SUFFIXES", "Bag", "check_bag", "read_bag"]

SUFFIXES = (".pt", ".npy", ".h5")
#: Most instances of one bag (plugin option ``max_instances``; a whole slide has ~10^4-10^5
#: tiles): a larger bag is a bad item.
MAX_INSTANCES = 500_000


@dataclass
class Bag:
    """A bag held in memory (``features`` set) or in a file read when needed (``path`` set).

    Attributes:
        features: (n, d) float32 or None. coords: (n, 2) float32 or None.
        path: the bag's file, read by :meth:`load`. size: n, when known.
    """

    features: Tensor | None = None
    coords: Tensor | None = None
    path: Path | None = None
    size: int | None = None

    def load(self) -> tuple[Tensor, Tensor | None]:
        """(features (n, d) float32, coords (n, 2) float32 or None), from memory or the file."""
        if self.features is not None:
            return self.features, self.coords
        if self.path is None:
            raise ValueError("a bag needs features or a path")
        return read_bag(self.path)


def read_bag(path: str | Path) -> tuple[Tensor, Tensor | None]:
    """Read one bag file (see the module doc): (features (n, d) float32, coords or None).

    Raises:
        ValueError: a missing or unreadable file, an unknown suffix, a layout other than the
            ones above. The message starts with the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: no such bag file")
    suffix = path.suffix.lower()
    coords = None
    try:
        if suffix == ".pt":
            data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, dict):
                if "features" not in data:
                    raise ValueError(f"a dict without 'features' (keys: {', '.join(data)})")
                features, coords = data["features"], data.get("coords")
            else:
                features = data
        elif suffix == ".npy":
            features = np.load(path, allow_pickle=False)
        elif suffix == ".h5":
            with h5py.File(path, "r") as file:
                if "features" not in file:
                    raise ValueError(f"no 'features' dataset (has: {', '.join(file)})")
                features = file["features"][()]
                coords = file["coords"][()] if "coords" in file else None
        else:
            raise ValueError(f"unknown bag file type {suffix!r} (use {', '.join(SUFFIXES)})")
    except ValueError as error:
        raise ValueError(f"{path.name}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any reader failure is a bad file
        raise ValueError(f"{path.name}: cannot read ({type(error).__name__}: {error})") from None
    features = _matrix(features, path.name, "features")
    if coords is not None:
        coords = _matrix(coords, path.name, "coords")
        if coords.shape != (features.shape[0], 2):
            raise ValueError(
                f"{path.name}: coords must be ({features.shape[0]}, 2), got {tuple(coords.shape)}"
            )
    return features, coords


def _matrix(value, name: str, what: str) -> Tensor:
    if not isinstance(value, Tensor | np.ndarray):
        raise ValueError(f"{name}: {what} must be an array or tensor, got {type(value).__name__}")
    tensor = torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value)
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise ValueError(f"{name}: {what} must be 2-D (n, d), got shape {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name}: {what} must be numbers, got {tensor.dtype}")
    return tensor.float()


def check_bag(
    features: Tensor, width: int | None, max_instances: int = MAX_INSTANCES
) -> str | None:
    """What is wrong with a bag's ``features`` (n, d) (empty, more than ``max_instances``
    instances, another width than ``width``, NaN or infinite values), or None when it is
    usable."""
    if features.shape[0] == 0:
        return "empty bag (no instance)"
    if features.shape[0] > max_instances:
        return (
            f"{features.shape[0]} instances, over the limit of max_instances={max_instances} "
            "(a plugin option)"
        )
    if width is not None and features.shape[1] != width:
        return f"{features.shape[1]} features per instance, expected {width}"
    finite = torch.isfinite(features).all(1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0])
        return f"NaN or infinite features (instance {row}, {int((~finite).sum())} such)"
    return None
