"""Checkpoints and run files: safetensors weights, a JSON description, the training state.

Layout of a run directory::

    run/
      latest.json                  -> {"checkpoint": "checkpoint-0003"}, replaced atomically
      best.json                    -> {"checkpoint": "checkpoint-0002", "epoch": 2, "monitor":
                                       "mAP", "value": 0.91, "val": {...}}, replaced atomically
      checkpoint-0002/             the best checkpoint, kept while it is the best
      checkpoint-0003/             the last ``keep`` checkpoints are kept (2 by default)
        model.safetensors          weights
        config.json                run config, plugin name and version, classes, epoch
        state.pt                   optimizer, scheduler, RNG, the warm start's validation
                                   scores (the one-SE rule's reference; loaded with
                                   weights_only=True)
      checkpoint-refit/            the kept warm start refit on train + val (RunConfig.refit):
                                   the best when best.json names it, never the latest; removed
                                   once a resumed run keeps another epoch
      metrics.jsonl
      .negev.lock                  held while a process writes the run (negev.engine.lock)

Every file is written whole into a temporary file, fsynced and renamed over its name
(:func:`write_file`), with the mode any file of the process gets (0666 less the umask). A
checkpoint directory is complete before ``latest.json`` (or ``best.json``) points to it, and
old checkpoints are removed only afterwards, so a run killed at any moment (SIGKILL included)
leaves the previous checkpoints intact. Loading takes the checkpoint ``latest.json`` (or
``best.json``) names and, when that one or its pointer cannot be read, the newest readable one,
with a :class:`RunWarning` naming each file skipped; every error names its file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from negev.errors import CheckpointError
from negev.files import atomic_write

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "RunWarning",
    "append_line",
    "clear_run",
    "find_checkpoint",
    "has_checkpoint",
    "holds_run",
    "latest_checkpoint",
    "load_checkpoint",
    "metrics_json",
    "read_best",
    "save_checkpoint",
    "save_refit",
    "write_best",
    "write_file",
]

LATEST = "latest.json"
BEST = "best.json"
WHICH = ("best", "latest")
KEEP = 2
STATE_KEYS = ("epoch", "optimizer", "scheduler", "rng")
META_KEYS = ("modality", "classes", "multilabel", "config")
# what a run writes into its directory (cleared by --overwrite; nothing else is touched)
RUN_FILES = (
    LATEST,
    BEST,
    "metrics.jsonl",
    "final_metrics.json",
    "bad_items.json",
    "evaluation_*.json",
)
_NUMBERED = re.compile(r"checkpoint-(\d+)")
#: The warm start refitted on train + val (:attr:`RunConfig.refit`): a best checkpoint that is
#: not an epoch, never the latest (a resume continues from the epochs).
REFIT = "checkpoint-refit"


class Checkpoint(dict):
    """What :func:`load_checkpoint` returns: ``weights``, ``meta``, ``state`` (or None) and
    ``path`` (the checkpoint directory read)."""


class RunWarning(UserWarning):
    """Something in a run directory was skipped or taken over; the work goes on."""


@contextlib.contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """Name ``path`` in the OS errors of the block (Python's write errors name no file); a full
    disk says "no space left on device"."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, "no space left on device", str(path)) from None
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def write_file(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (:func:`negev.files.atomic_write`: a temporary file
    beside it with the usual mode, fsync, rename). On any error ``path`` is unchanged and the
    error names it."""
    payload = data.encode() if isinstance(data, str) else bytes(data)
    with disk_errors(Path(path)):
        atomic_write(path, lambda temporary: temporary.write_bytes(payload))


def metrics_json(metrics: dict[str, float]) -> str:
    """``metrics`` as the strict JSON of a results file (``final_metrics.json``,
    ``evaluation_<split>.json``): an undefined metric (NaN, the ROC-AUC of a split holding one
    class) is ``null``, not the bare ``NaN`` strict parsers (jq, JavaScript) refuse."""
    defined = {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in metrics.items()
    }
    return json.dumps(defined, indent=2, allow_nan=False) + "\n"


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` (``metrics.jsonl``); errors name the file."""
    with disk_errors(path), open(path, "a") as file:
        file.write(line + "\n")
        file.flush()


def save_checkpoint(
    run_dir: Path,
    epoch: int,
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any],
    best: dict[str, Any] | None = None,
    keep: int = KEEP,
) -> Path:
    """Write checkpoint ``epoch`` and make it the latest, and the best when ``best`` (what
    ``best.json`` records besides the checkpoint's name) is given; then remove the checkpoints
    other than the ``keep`` newest and the best."""
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{epoch:04d}"
    target = run_dir / name
    _write_folder(target, model, meta, state)
    write_json(run_dir / LATEST, {"checkpoint": name})
    if best is not None:
        write_best(run_dir, {"checkpoint": name, **best})
    _fsync_dir(run_dir)
    # checkpoints after this epoch are of a timeline left behind (a resume fell back past them)
    earlier = [folder for number, folder in _numbered(run_dir) if number <= epoch]
    kept = {folder.name for folder in earlier[:keep]} | {name, _pointed_name(run_dir / BEST)}
    for _, old in _numbered(run_dir):
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)
    if _pointed_name(run_dir / BEST) != REFIT:  # a refit a resumed run has moved past
        shutil.rmtree(run_dir / REFIT, ignore_errors=True)
    return target


def save_refit(
    run_dir: Path, model: nn.Module, meta: dict[str, Any], state: dict[str, Any],
    best: dict[str, Any],
) -> Path:  # fmt: skip
    """Write the refitted warm start as :data:`REFIT` and make it the best (``best``: what
    ``best.json`` records besides the name); the latest checkpoint stays the last epoch's."""
    target = run_dir / REFIT
    _write_folder(target, model, meta, state)
    write_best(run_dir, {"checkpoint": REFIT, **best})
    _fsync_dir(run_dir)
    return target


def _write_folder(
    target: Path, model: nn.Module, meta: dict[str, Any], state: dict[str, Any]
) -> None:
    """A checkpoint folder (weights, description, training state), replaced whole; removed
    again when a write fails."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # serialised in memory, written by write_file: a full disk is an error naming the file
    # (torch.save into a file reports it as "unexpected pos")
    state_bytes = io.BytesIO()
    torch.save(state, state_bytes)
    try:
        write_file(target / "model.safetensors", safetensors_bytes(weights))
        write_file(target / "config.json", json.dumps(meta, indent=2) + "\n")
        write_file(target / "state.pt", state_bytes.getbuffer())
        _fsync_dir(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """``value`` as one line of JSON in ``path``, atomically."""
    write_file(path, json.dumps(value) + "\n")


def write_best(run_dir: Path, best: dict[str, Any]) -> None:
    """Point ``best.json`` at ``best["checkpoint"]`` (atomically), with what else it records."""
    write_json(Path(run_dir) / BEST, best)


def read_best(run_dir: Path) -> dict[str, Any] | None:
    """What ``best.json`` records (checkpoint, epoch, monitor, value, val), None without one."""
    pointer = Path(run_dir) / BEST
    if not pointer.is_file():
        return None
    try:
        return json.loads(pointer.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{pointer} is not valid JSON: {exc}") from None


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a training run."""
    run_dir = Path(run_dir)
    return run_dir.is_dir() and (
        any((run_dir / name).exists() for name in (LATEST, BEST, "metrics.jsonl"))
        or any(run_dir.glob("checkpoint-*"))
    )


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` got as far as a checkpoint (``latest.json`` exists: it is
    written after its checkpoint and removed first by :func:`clear_run`)."""
    return (Path(run_dir) / LATEST).is_file()


def clear_run(run_dir: Path) -> None:
    """Remove a run's files from ``run_dir`` (its pointers first, so that nothing half-removed
    can be resumed: a run without ``latest.json`` starts again); other files are left alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
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
    itself; the newest readable one (config and weights header) when that one is not."""

    def check(target: Path) -> Path:
        _read_meta(target)
        weights_file = target / "model.safetensors"
        try:
            with safe_open(weights_file, framework="pt"):  # checks that the file is whole
                pass
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(_broken_weights(weights_file, exc)) from None
        return target

    return _first_readable(Path(path), which, check)


def load_checkpoint(path: Path, *, with_state: bool = False, which: str = "latest") -> Checkpoint:
    """Weights (safetensors), metadata (JSON) and, if asked, the training state of the ``latest``
    or ``best`` checkpoint of a run directory (or of a checkpoint directory); the newest readable
    checkpoint when that one is not, with a :class:`RunWarning` naming what was skipped.

    Nothing is unpickled: the state is read with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: no checkpoint can be read (each file and what is wrong with it).
    """

    def read(target: Path) -> Checkpoint:
        meta = _read_meta(target)
        weights_file = target / "model.safetensors"
        try:
            weights = load_file(weights_file)
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(_broken_weights(weights_file, exc)) from None
        state = _read_state(target) if with_state else None
        return Checkpoint(weights=weights, meta=meta, state=state, path=target)

    return _first_readable(Path(path), which, read)


def _first_readable(path: Path, which: str, read):
    """``read(directory)`` of the first checkpoint of :func:`_candidates` that it reads without
    a :class:`CheckpointError`, warning about those skipped."""
    if which not in WHICH:
        raise ValueError(f"which checkpoint: 'best' or 'latest', got {which!r}")
    candidates, problems = _candidates(path, which)
    for target in candidates:
        try:
            result = read(target)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            warnings.warn(
                f"using {target}; skipped: {'; '.join(problems)}", RunWarning, stacklevel=3
            )
        return result
    if not problems:
        raise FileNotFoundError(f"{path} holds no checkpoint (no {LATEST} nor model.safetensors)")
    raise CheckpointError(f"{path} holds no readable checkpoint: {'; '.join(problems)}")


def _candidates(path: Path, which: str) -> tuple[list[Path], list[str]]:
    """The checkpoint directories to try, in order (the pointed one, then the others newest
    first), and the problems of the pointers already found. A checkpoint directory given
    itself is the only candidate; a run without ``latest.json`` has none."""
    if (path / "model.safetensors").is_file() or not (path / LATEST).is_file():
        return ([path] if (path / "model.safetensors").is_file() else []), []
    order: list[Path] = []
    problems: list[str] = []
    pointers = ([BEST] if which == "best" and (path / BEST).is_file() else []) + [LATEST]
    for pointer in pointers:
        try:
            order.append(path / _pointed_name(path / pointer, strict=True))
        except CheckpointError as exc:
            problems.append(str(exc))
        if order and order[-1].name == REFIT:  # unreadable: the fit on train it refitted
            with contextlib.suppress(OSError, json.JSONDecodeError, KeyError, TypeError,
                                     ValueError):  # fmt: skip
                epoch = int(json.loads((path / pointer).read_text())["epoch"])
                order.append(path / f"checkpoint-{epoch:04d}")
    order += [folder for _, folder in _numbered(path)]
    return list(dict.fromkeys(order)), problems


def _pointed_name(pointer: Path, strict: bool = False) -> str | None:
    """The checkpoint a pointer file names (None without a readable one, unless ``strict``)."""
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
        if not isinstance(name, str) or not (_NUMBERED.fullmatch(name) or name == REFIT):
            raise TypeError(f"not a checkpoint name: {name!r}")
        return name
    except FileNotFoundError:
        if strict:
            raise CheckpointError(f"{pointer} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        if strict:
            raise CheckpointError(f"{pointer} is not a checkpoint pointer: {exc}") from None
    return None


def _numbered(run_dir: Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-NNNN`` directories of a run, newest (highest epoch) first."""
    found = [
        (int(match[1]), folder)
        for folder in Path(run_dir).glob("checkpoint-*")
        if (match := _NUMBERED.fullmatch(folder.name)) and folder.is_dir()
    ]
    return sorted(found, reverse=True)


def _read_meta(target: Path) -> dict[str, Any]:
    config_file = target / "config.json"
    try:
        meta = json.loads(config_file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{config_file} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file} is not valid JSON: {exc}") from None
    missing = [key for key in META_KEYS if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise CheckpointError(f"{config_file} is not a negev checkpoint: no {', '.join(missing)}")
    return meta


def _broken_weights(weights_file: Path, exc: Exception) -> str:
    return f"{weights_file} is missing, truncated or corrupt: {exc}"


def _read_state(target: Path) -> dict[str, Any]:
    """The training state, read with ``weights_only=True``; anything else is a
    :class:`CheckpointError` (torch's advice to unpickle it is not passed on)."""
    state_file = target / "state.pt"
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{state_file} is missing") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        state = None
    if not isinstance(state, dict) or any(key not in state for key in STATE_KEYS):
        raise CheckpointError(
            f"{state_file} is not a training state written by negev (truncated, corrupt or "
            "foreign); it was refused without running anything in it"
        )
    return state


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
