"""Checkpoints: safetensors weights, a JSON description, the training state; written atomically.

Layout of a run directory::

    run/
      latest.json                  -> {"checkpoint": "checkpoint-0003"}, replaced atomically
      checkpoint-0003/
        model.safetensors          weights
        config.json                run config, plugin name and version, classes, epoch
        state.pt                   optimizer, scheduler, RNG (loaded with weights_only=True)
      metrics.jsonl

A checkpoint directory is complete before ``latest.json`` points to it, so a run killed at any
moment (SIGKILL included) leaves the previous checkpoint intact.
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

__all__ = ["Checkpoint", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

LATEST = "latest.json"


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
    run_dir: Path, epoch: int, model: nn.Module, meta: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write checkpoint ``epoch`` and make it the latest; older checkpoints are removed."""
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
    _atomic_write(
        run_dir / LATEST, lambda p: Path(p).write_text(json.dumps({"checkpoint": name}) + "\n")
    )
    _fsync_dir(run_dir)
    for old in run_dir.glob("checkpoint-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(path: Path) -> Path:
    """The checkpoint directory of a run directory (or the checkpoint directory itself)."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    pointer = path / LATEST
    if not pointer.is_file():
        raise FileNotFoundError(f"{path} holds no checkpoint (no {LATEST} nor model.safetensors)")
    target = path / json.loads(pointer.read_text())["checkpoint"]
    if not (target / "model.safetensors").is_file():
        raise FileNotFoundError(f"{pointer} points to {target.name}, which is missing")
    return target


def load_checkpoint(path: Path, *, with_state: bool = False) -> Checkpoint:
    """Weights (safetensors), metadata (JSON) and, if asked, the training state.

    Nothing is unpickled: the state is read with ``torch.load(weights_only=True)``.
    """
    target = latest_checkpoint(path)
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
