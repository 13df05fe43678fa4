"""Run configuration: defaults < plugin defaults < TOML file < command-line options."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from negev.nn import LOSSES, POOLINGS

__all__ = [
    "OPTIMIZERS",
    "POOL_PARAMS",
    "PRECISIONS",
    "RunConfig",
    "check_type",
    "default_workers",
    "load_toml",
]

# the RunConfig fields that parameterise a pooling; each pooling takes its own subset
POOL_PARAMS = ("kmax", "kmin", "alpha", "beta_pos", "beta_neg", "attention_dim", "query_dim")
OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class RunConfig:
    """Everything that defines a training run (saved with every checkpoint).

    Pooling: ``pooling`` names a registered pooling (:data:`negev.nn.POOLINGS`); of ``kmax``,
    ``kmin``, ``alpha``, ``beta_pos``, ``beta_neg``, ``attention_dim`` (``gabmil``'s L),
    ``query_dim`` (``dsmil``'s E) it takes its own (``maxmin``: alpha only),
    None meaning that pooling's default. Setting one it does not take is an error. In a built
    config they hold what the pooling was built with (None for the ones it does not take).
    ``num_maps`` M maps per class; ``pool_each_map`` pools each of them on its own and averages
    their scores (an ensemble of M detectors) instead of pooling their average (WILDCAT), see
    :class:`negev.nn.EvidenceHead`.

    ``loss=None`` picks ``bce`` for multi-label data and ``ce`` for multi-class data. ``weights``
    is a local file of pretrained encoder weights, for plugins whose encoders take them. ``plugin``
    holds the modality's own options (``[plugin]`` table in TOML, ``--set key=value``).

    Model selection: ``monitor`` names the validation metric (higher is better) that picks the
    ``best`` checkpoint (None: ``mAP`` for multi-label data, ``accuracy`` otherwise);
    ``patience`` stops after that many epochs without a better value (None: never). Where epoch
    0 is a convex warm start (the linear baseline), a trained epoch replaces it only when it is
    ahead on validation by more than ``start_margin`` bootstrap standard errors of the paired
    difference (:mod:`negev.engine.selection`; 1: the one-standard-error rule, 0: any gain),
    raised for the epochs compared with it (``epochs``, at most ``patience``) so that the run as
    a whole leaves the start by chance no more often than one comparison at ``start_margin``
    would (Bonferroni: 2.3 standard errors for 15 epochs at 1); ``negev tune`` holds its trials
    to the same rule against its first trial (the defaults), raised for the other trials.
    ``refit``: when the warm start is the model kept, refit it on train + val, in the order the
    data lists them (its C kept; the bags plugin's inner-CV fit again, on the folds a fit on the
    listed bags has) as the run's best checkpoint, as a tuned baseline is refit on all of its
    data once its hyper-parameters are chosen; its validation figures stay those of the fit on
    train.

    Speed: ``workers`` DataLoader worker processes (None: from the CPU count, 0: in-process),
    ``precision`` ``fp32``, ``bf16`` or ``fp16`` (autocast of the encoder; pooling and losses in
    float32), ``threads`` torch intra-op threads (None: torch's default). None of them changes
    which examples, augmentations or batches a run sees.

    Recipe: ``backbone_lr_mult`` scales the encoder's learning rate against the head's,
    ``warmup_epochs`` ramps the learning rate up linearly (per step, fractions allowed) before
    the cosine decay, ``accumulate`` sums the gradients of that many batches per step,
    ``clip_grad`` caps the gradient norm, ``decay_norms_biases=False`` exempts normalisation
    weights and biases from weight decay.

    Checkpoints: ``keep`` the last that many (besides the best); a resume falls back to the
    newest readable one.
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
    kmax: float | int | None = None
    kmin: float | int | None = None
    alpha: float | None = None
    num_maps: int = 1
    pool_each_map: bool = False
    beta_pos: float | None = None
    beta_neg: float | None = None
    attention_dim: int | None = None
    query_dim: int | None = None
    loss: str | None = None
    seed: int = 0
    device: str = "cpu"
    skip_bad: bool = False
    weights: str | None = None
    monitor: str | None = None
    patience: int | None = None
    start_margin: float = 1.0
    refit: bool = True
    workers: int | None = None
    precision: str = "fp32"
    threads: int | None = None
    backbone_lr_mult: float = 1.0
    warmup_epochs: float = 0.0
    accumulate: int = 1
    clip_grad: float | None = None
    decay_norms_biases: bool = True
    keep: int = 2
    plugin: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, *layers: dict[str, Any]) -> RunConfig:
        """Merge layers of options (later wins; ``plugin`` tables merge key by key).

        A layer that names a pooling other than the one finally chosen also loses its pooling
        parameters (they were meant for its pooling: a plugin's WILDCAT k does not carry over to
        ``--pooling maxmin``); the pooling parameters of every other layer must be ones the
        chosen pooling takes. The unset ones get that pooling's defaults.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        merged: dict[str, Any] = {"plugin": {}}
        chosen = next(
            (layer["pooling"] for layer in reversed(layers) if layer.get("pooling") is not None),
            cls.pooling,
        )
        for layer in layers:
            replaced = layer.get("pooling") not in (None, chosen)
            for key, value in layer.items():
                if key not in known:
                    raise ValueError(f"unknown option {key!r}; known: {', '.join(sorted(known))}")
                if value is None or (key in POOL_PARAMS and replaced):
                    continue
                value = check_type(key, value)
                if key == "plugin":
                    merged["plugin"].update(value)
                else:
                    merged[key] = value
        config = cls(**merged)
        config.validate()
        built = POOLINGS.resolve(config.pooling, config.pooling_params())
        for key in POOL_PARAMS:
            setattr(config, key, built.get(key))
        return config

    def pooling_params(self) -> dict[str, Any]:
        """The pooling parameters that are set (not None)."""
        return {key: getattr(self, key) for key in POOL_PARAMS if getattr(self, key) is not None}

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first bad option."""
        if not self.modality:
            raise ValueError("no modality given (--modality or 'modality' in the config file)")
        POOLINGS.resolve(self.pooling, self.pooling_params())  # ConfigError: name or parameter
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.loss is not None:
            LOSSES.get(self.loss)  # ConfigError naming the registered losses
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        for name in ("epochs", "batch_size", "num_maps", "accumulate", "keep"):
            _check_int(name, getattr(self, name), 1)
        for name, low in (
            ("patience", 1), ("workers", 0), ("threads", 1), ("attention_dim", 1), ("query_dim", 1)
        ):  # fmt: skip
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low)
        _check_int("seed", self.seed, 0, SEED_MAX)
        for name in FLOAT_OPTIONS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.backbone_lr_mult >= 0:
            raise ValueError(f"backbone_lr_mult must be >= 0, got {self.backbone_lr_mult!r}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs!r}")
        if not self.start_margin >= 0:
            raise ValueError(f"start_margin must be >= 0, got {self.start_margin!r}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"clip_grad must be > 0, got {self.clip_grad!r}")
        if self.monitor is not None and not isinstance(self.monitor, str):
            raise ValueError(f"monitor must be a metric name, got {self.monitor!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int)
    if bad or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")


# seeds of torch, NumPy and the per-epoch generators (seed * 100003 + epoch) all take it
SEED_MAX = 2**32 - 1
FLOAT_OPTIONS = (
    "lr", "weight_decay", "kmax", "kmin", "alpha", "beta_pos", "beta_neg", "backbone_lr_mult",
    "warmup_epochs", "clip_grad", "start_margin",
)  # fmt: skip
# what each plain type of an option's annotation accepts, and its name in messages
_KINDS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an int", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, (str, os.PathLike))),
    dict: ("a table of options", lambda v: isinstance(v, dict)),
}


@functools.cache
def _option_kinds(name: str) -> tuple[type, ...] | None:
    """The plain types option ``name``'s annotation allows (None: a type this check does not
    know, left to :meth:`RunConfig.validate`)."""
    hint = typing.get_type_hints(RunConfig).get(name)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = tuple(typing.get_origin(a) or a for a in (typing.get_args(hint) if union else (hint,)))
    kinds = tuple(k for k in kinds if k is not type(None))
    return kinds if kinds and all(k in _KINDS for k in kinds) else None


def check_type(name: str, value: Any) -> Any:
    """``value`` if it has option ``name``'s type (a path for a string option is given as a
    string), else a one-line :class:`ValueError` naming the option, the type and the value."""
    kinds = _option_kinds(name)
    if kinds is None or any(_KINDS[kind][1](value) for kind in kinds):
        return os.fspath(value) if isinstance(value, os.PathLike) else value
    shown = [kind for kind in kinds if not (kind is int and float in kinds)]  # an int is a number
    expected = " or ".join(_KINDS[kind][0] for kind in shown)
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def default_workers() -> int:
    """DataLoader workers when ``workers`` is None: one per CPU this process may use, less one
    for the training process, at most 12 (0 on a single CPU)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(12, cpus - 1))


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
    options = {key.replace("-", "_"): value for key, value in raw.items()}
    for key, value in options.items():
        try:
            check_type(key, value)
        except ValueError as exc:
            raise ValueError(f"config file {path}: {exc}") from None
    return options
