"""Training augmentation of a clip, on its waveform (in the DataLoader's workers): a circular
time shift and SpecAugment-style masks (Park et al. 2019).

The masks are applied to the waveform, so that the log-mel front end, which runs on the
accelerator, stays the same for training and evaluation: a time mask zeroes a span of samples
(its frames fall to the spectrogram's floor), a frequency mask zeroes a band of the clip's
spectrum (its mel bins fall to the floor). Band edges are drawn on the mel scale, as
SpecAugment draws mel bins.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["augment_wave"]


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _hz(mel: float) -> float:
    return 700.0 * (10 ** (mel / 2595.0) - 1.0)


def augment_wave(
    wave: Tensor,
    sample_rate: int,
    generator: torch.Generator,
    time_masks: int = 2,
    freq_masks: int = 2,
    width: float = 0.1,
    f_min: float = 50.0,
) -> Tensor:
    """A randomly shifted and masked copy of ``wave`` (S,) float32.

    Args:
        time_masks, freq_masks: how many masks of each kind; each spans a uniform share in
            [0, ``width``) of the clip's duration, or of the mel range [``f_min``, rate / 2].
        generator: the only source of randomness.
    """
    n = wave.numel()
    out = wave.roll(int(torch.randint(0, max(n, 1), (1,), generator=generator)))
    if freq_masks:
        spectrum = torch.fft.rfft(out)
        bins = spectrum.numel()
        low, high = _mel(f_min), _mel(sample_rate / 2)
        for _ in range(freq_masks):
            u = torch.rand(2, generator=generator).tolist()
            band = u[0] * width * (high - low)
            start = low + u[1] * (high - low - band)
            first = int(_hz(start) / (sample_rate / 2) * (bins - 1))
            last = int(math.ceil(_hz(start + band) / (sample_rate / 2) * (bins - 1)))
            spectrum[first:last] = 0
        out = torch.fft.irfft(spectrum, n=n)
    else:
        out = out.clone()
    for _ in range(time_masks):
        u = torch.rand(2, generator=generator).tolist()
        span = int(u[0] * width * n)
        start = int(u[1] * (n - span))
        out[start : start + span] = 0
    return out
