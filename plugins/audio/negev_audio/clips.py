"""Reading audio clips: WAV / FLAC / OGG through soundfile, mono, resampled with torchaudio."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from torch import Tensor

__all__ = ["MAX_SECONDS", "SILENCE", "Waveform", "check_clip", "read_clip"]


class Waveform(NamedTuple):
    """A clip held in memory: mono samples (S,) float32 and their sample rate in Hz."""

    samples: Tensor
    rate: int


# Peak amplitude (full scale = 1) under which a clip counts as silent.
SILENCE = 1e-4
#: Longest clip, in seconds (plugin option ``max_seconds``): a longer one is a bad item, refused
#: from its header before it is decoded.
MAX_SECONDS = 600.0


def read_clip(
    path: str | Path, sample_rate: int, min_samples: int = 1, max_seconds: float = MAX_SECONDS
) -> Tensor:
    """The clip at ``path`` as a mono float32 waveform (S,) at ``sample_rate`` (channels
    averaged, resampled with torchaudio's windowed-sinc resampler when the file's rate differs).

    Raises:
        ValueError: naming the file: missing, unreadable, longer than ``max_seconds``, empty
            (no samples), shorter than ``min_samples`` after resampling (one analysis window),
            or silent.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such audio file")
    try:
        info = soundfile.info(str(path))
        if info.frames > max_seconds * info.samplerate:
            seconds = info.frames / info.samplerate
            raise ValueError(
                f"{path}: {seconds:.1f} s long, over the limit of max_seconds={max_seconds:g} "
                "(a plugin option)"
            )
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read audio ({exc})") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path}: empty clip (no samples)")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    peak = float(wave.abs().max())
    if not np.isfinite(peak):
        raise ValueError(f"{path}: samples are not finite (NaN or inf)")
    if peak < SILENCE:
        raise ValueError(f"{path}: silent clip (peak amplitude {peak:.1e} < {SILENCE:.0e})")
    if rate != sample_rate:
        wave = AF.resample(wave, rate, sample_rate)
    if wave.numel() < min_samples:
        raise ValueError(
            f"{path}: clip too short ({wave.numel()} samples at {sample_rate} Hz, "
            f"one analysis window is {min_samples})"
        )
    return wave


def check_clip(
    path: str | Path, sample_rate: int, min_samples: int = 1, max_seconds: float = MAX_SECONDS
) -> float:
    """Read the clip once (raising as :func:`read_clip` does) and return its duration in s."""
    return read_clip(path, sample_rate, min_samples, max_seconds).numel() / sample_rate
