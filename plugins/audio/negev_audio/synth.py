"""The built-in demo: synthetic sound events at random times over background noise.

Four event types: ``tone`` (a steady sinusoid with harmonics), ``chirp`` (a frequency sweep),
``clicks`` (a train of short impulses) and ``burst`` (band-limited noise). Each clip is 3-6 s long
(so a batch mixes lengths and is masked), holds 0-3 events at random onsets and loudness, and is
labelled with the set of event types present; the onsets and offsets are kept as ground truth for
evaluation only.
"""

from __future__ import annotations

import numpy as np
import torch

from negev.plugins import DataSplits, Example
from negev_audio.clips import Waveform

__all__ = ["EVENTS", "RATE", "synth_clip", "synth_demo"]

EVENTS = ["tone", "chirp", "clicks", "burst"]
RATE = 8000  # Hz


def _event(kind: str, rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """n samples of one event, peak ~1, with 10 ms fades."""
    t = np.arange(n) / rate
    if kind == "tone":
        f = rng.uniform(300, 1200)
        wave = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t)
    elif kind == "chirp":
        f0, f1 = rng.uniform(300, 900), rng.uniform(1400, 3000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1]))
        wave = np.sin(phase)
    elif kind == "clicks":
        wave = np.zeros(n)
        period = int(rate / rng.uniform(8, 20))
        click = np.exp(-np.arange(40) / 6) * rng.choice([-1, 1], 40)
        for start in range(0, n - 40, period):
            wave[start : start + 40] += click
    else:  # burst: noise band-limited by an FFT mask
        spectrum = np.fft.rfft(rng.normal(size=n))
        freqs = np.fft.rfftfreq(n, 1 / rate)
        low = rng.uniform(200, 1500)
        spectrum[(freqs < low) | (freqs > low + rng.uniform(500, 1500))] = 0
        wave = np.fft.irfft(spectrum, n)
    fade = min(int(0.01 * rate), n // 2)
    ramp = np.ones(n)
    ramp[:fade] = np.linspace(0, 1, fade)
    ramp[n - fade :] = np.linspace(1, 0, fade)
    return wave / (np.abs(wave).max() + 1e-9) * ramp


def synth_clip(
    rng: np.random.Generator, rate: int = RATE
) -> tuple[np.ndarray, tuple[int, ...], list[tuple[int, float, float]]]:
    """One clip: (waveform (S,) float32, labels, events [(class, onset s, offset s)])."""
    duration = rng.uniform(3.0, 6.0)
    n = int(duration * rate)
    clip = rng.normal(scale=rng.uniform(0.01, 0.04), size=n)
    events = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]))):
        c = int(rng.integers(len(EVENTS)))
        length = rng.uniform(0.3, 1.0)
        onset = rng.uniform(0, duration - length)
        start, count = int(onset * rate), int(length * rate)
        clip[start : start + count] += rng.uniform(0.08, 0.3) * _event(EVENTS[c], rng, count, rate)
        events.append((c, round(onset, 3), round(onset + length, 3)))
    labels = tuple(sorted({e[0] for e in events}))
    return clip.astype(np.float32), labels, events


def synth_demo(sizes: tuple[int, int, int] = (1200, 200, 400), seed: int = 0) -> DataSplits:
    """Train / val / test splits of synthetic clips (8 kHz), deterministic for a given seed."""
    splits = []
    for offset, (split, count) in enumerate(zip(("train", "val", "test"), sizes, strict=True)):
        rng = np.random.default_rng([seed, 7, offset])
        examples = []
        for i in range(count):
            wave, labels, events = synth_clip(rng)
            examples.append(
                Example(
                    f"synth-{split}-{i:05d}",
                    Waveform(torch.from_numpy(wave), RATE),
                    labels,
                    truth={"events": events, "duration": len(wave) / RATE},
                )
            )
        splits.append(examples)
    return DataSplits(*splits, classes=list(EVENTS), multilabel=True, builtin=True)
