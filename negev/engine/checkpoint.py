"""Checkpoints: safetensors weights, a JSON description, the training state; written atomically.

Layout of a run directory::

    run/
      latest.json                  -> {"checkpoint": "checkpoint-0003"}, replaced atomically
      best.json                    -> {"checkpoint": "checkpoint-0002", "epoch": 2, "monitor":
                                       "mAP", "value": 0.91, "val": {...}}, replaced atomically
      checkpoint-0002/             the best checkpoint, kept while it is the best
      checkpoint-0003/
        model.safetensors          weights
        config.json                run config, plugin name and version, classes, epoch
        state.pt                   optimizer, scheduler, RNG (loaded with weights_only=True)
      metrics.jsonl

A checkpoint directory is complete before ``latest.json`` (or ``best.json``) points to it, and
old checkpoints are removed only afterwards, so a run killed at any moment (SIGKILL included)
leaves the previous checkpoints intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "Checkpoint",
    "clear_run",
    "find_checkpoint",
    "holds_run",
    "latest_checkpoint",
    "load_checkpoint",
    "read_best",
    "save_checkpoint",
    "write_best",
]

LATEST = "latest.json"
BEST = "best.json"
WHICH = ("best", "latest")
# what a run writes into its directory (cleared by --overwrite; nothing else is touched)
RUN_FILES = (
    LATEST,
    BEST,
    "metrics.jsonl",
    "final_metrics.json",
    "bad_items.json",
    "evaluation_*.json",
)


class Checkpoint(dict):
    """What :func:`load_checkpoint` returns: ``weights``, ``meta`` and ``state`` (or None)."""


def _atomic_write(path: Path, write) -> None:
    """Write through ``write(file_path)`` into a temporary file, fsync, then rename over path."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def save_checkpoint(
    run_dir: Path,
    epoch: int,
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any],
    best: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``epoch`` and make it the latest, and the best when ``best`` (what
    ``best.json`` records besides the checkpoint's name) is given; other checkpoints than the
    latest and the best are removed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{epoch:04d}"
    target = run_dir / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(target / "model.safetensors", lambda p: save_file(weights, p))
    _atomic_write(
        target / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n")
    )
    _atomic_write(target / "state.pt", lambda p: torch.save(state, p))
    _fsync_dir(target)
    _write_json(run_dir / LATEST, {"checkpoint": name})
    if best is not None:
        write_best(run_dir, {"checkpoint": name, **best})
    _fsync_dir(run_dir)
    kept = {name, (read_best(run_dir) or {}).get("checkpoint")}
    for old in run_dir.glob("checkpoint-*"):
        if old.name not in kept and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return target


def _write_json(path: Path, value: dict[str, Any]) -> None:
    _atomic_write(path, lambda p: Path(p).write_text(json.dumps(value) + "\n"))


def write_best(run_dir: Path, best: dict[str, Any]) -> None:
    """Point ``best.json`` at ``best["checkpoint"]`` (atomically), with what else it records."""
    _write_json(Path(run_dir) / BEST, best)


def read_best(run_dir: Path) -> dict[str, Any] | None:
    """What ``best.json`` records (checkpoint, epoch, monitor, value, val), None without one."""
    pointer = Path(run_dir) / BEST
    if not pointer.is_file():
        return None
    try:
        return json.loads(pointer.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{pointer} is not valid JSON: {exc}") from None


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a training run."""
    run_dir = Path(run_dir)
    return run_dir.is_dir() and (
        any((run_dir / name).exists() for name in (LATEST, BEST, "metrics.jsonl"))
        or any(run_dir.glob("checkpoint-*"))
    )


def clear_run(run_dir: Path) -> None:
    """Remove a run's files from ``run_dir`` (its pointers first, so that nothing half-removed
    can be resumed); other files are left alone."""
    run_dir = Path(run_dir)
    for pattern in RUN_FILES:
        for path in sorted(run_dir.glob(pattern)):
            path.unlink()
    _fsync_dir(run_dir)
    for old in run_dir.glob("checkpoint-*"):
        if old.is_dir():
            shutil.rmtree(old)


def latest_checkpoint(path: Path) -> Path:
    """The latest checkpoint directory of a run directory (or the checkpoint directory itself)."""
    return find_checkpoint(path, "latest")


def find_checkpoint(path: Path, which: str = "best") -> Path:
    """The ``best`` or ``latest`` checkpoint directory of a run directory (a run without a best
    checkpoint, from before model selection, gives its latest), or the checkpoint directory
    itself."""
    if which not in WHICH:
        raise ValueError(f"which checkpoint: 'best' or 'latest', got {which!r}")
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    pointer = path / (BEST if which == "best" and (path / BEST).is_file() else LATEST)
    if not pointer.is_file():
        raise FileNotFoundError(f"{path} holds no checkpoint (no {LATEST} nor model.safetensors)")
    try:
        target = path / json.loads(pointer.read_text())["checkpoint"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{pointer} is not a checkpoint pointer: {exc}") from None
    if not (target / "model.safetensors").is_file():
        raise FileNotFoundError(f"{pointer} points to {target.name}, which is missing")
    return target


def load_checkpoint(path: Path, *, with_state: bool = False, which: str = "latest") -> Checkpoint:
    """Weights (safetensors), metadata (JSON) and, if asked, the training state of the ``latest``
    or ``best`` checkpoint of a run directory (or of a checkpoint directory).

    Nothing is unpickled: the state is read with ``torch.load(weights_only=True)``.
    """
    target = find_checkpoint(path, which)
    try:
        meta = json.loads((target / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {target} has no readable config.json: {exc}") from exc
    checkpoint = Checkpoint(weights=load_file(target / "model.safetensors"), meta=meta, state=None)
    if with_state:
        checkpoint["state"] = torch.load(target / "state.pt", weights_only=True)
    return checkpoint


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
