"""The audio plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

from dataclasses import dataclass

from negev.plugins.options import option
from negev_audio.clips import MAX_SECONDS
from negev_audio.synth import RATE

__all__ = ["AudioOptions"]


@dataclass(frozen=True)
class AudioOptions:
    """Options of the ``audio`` plugin; ``augment`` left at None is on for data on disk and
    off for the synthetic demo (resolved by ``fit_state``)."""

    sample_rate: int = option(RATE, "Hz; clips at other rates are resampled")
    n_mels: int = option(32, "mel bands")
    hop: int = option(256, "samples per frame (a region)")
    width: int = option(16, "CNN: channels")
    blocks: int = option(4, "CNN: blocks")
    classes: str | None = option(None, "CSV: the class list, |-separated")
    segment: float = option(1.0, "segment F1: segment length in seconds")
    detection_threshold: float = option(0.5, "share of a map's maximum marking a frame active")
    demo_train: int = option(1200, "demo: training clips")
    demo_val: int = option(200, "demo: validation clips")
    demo_test: int = option(400, "demo: test clips")
    augment: bool | None = option(None, "circular time shift + SpecAugment masks in training")
    time_masks: int = option(2, "augment: time masks per clip")
    freq_masks: int = option(2, "augment: frequency masks per clip")
    mask_width: float = option(0.1, "augment: largest share of the clip / mel range a mask covers")
    max_seconds: float = option(MAX_SECONDS, "longest clip in seconds; a longer one is a bad item")

    def __post_init__(self) -> None:
        if not self.max_seconds > 0:
            raise ValueError(f"plugin option max_seconds must be > 0, got {self.max_seconds}")
