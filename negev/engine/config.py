"""Run configuration: defaults < plugin defaults < TOML file < command-line options."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from negev.nn import POOLINGS

__all__ = ["LOSSES", "OPTIMIZERS", "RunConfig", "load_toml"]

LOSSES = ("bce", "ce", "ap", "mantra")
OPTIMIZERS = ("adamw", "sgd")


@dataclass
class RunConfig:
    """Everything that defines a training run (saved with every checkpoint).

    ``loss=None`` picks ``bce`` for multi-label data and ``ce`` for multi-class data. ``weights``
    is a local file of pretrained encoder weights, for plugins whose encoders take them. ``plugin``
    holds the modality's own options (``[plugin]`` table in TOML, ``--set key=value``).
    """

    modality: str = ""
    data: str | None = None
    out: str = "runs/negev"
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    pooling: str = "wildcat"
    kmax: float | int = 0.2
    kmin: float | int | None = None
    alpha: float = 0.7
    num_maps: int = 1
    beta_pos: float = 5.0
    beta_neg: float = -5.0
    loss: str | None = None
    seed: int = 0
    device: str = "cpu"
    skip_bad: bool = False
    weights: str | None = None
    plugin: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, *layers: dict[str, Any]) -> RunConfig:
        """Merge layers of options (later wins; ``plugin`` tables merge key by key)."""
        known = {f.name for f in dataclasses.fields(cls)}
        merged: dict[str, Any] = {"plugin": {}}
        for layer in layers:
            for key, value in layer.items():
                if key not in known:
                    raise ValueError(f"unknown option {key!r}; known: {', '.join(sorted(known))}")
                if key == "plugin":
                    merged["plugin"].update(value or {})
                elif value is not None:
                    merged[key] = value
        config = cls(**merged)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first bad option."""
        if not self.modality:
            raise ValueError("no modality given (--modality or 'modality' in the config file)")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "num_maps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file whose keys mirror the command-line options (``batch_size`` or
    ``batch-size``), with a ``[plugin]`` table for the modality's own options."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc
    return {key.replace("-", "_"): value for key, value in raw.items()}
