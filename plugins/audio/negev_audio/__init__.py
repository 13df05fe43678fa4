"""negev modality plugin for audio: log-mel time frames as regions, a small CNN, weakly
labelled sound event tagging and detection (segment-based F1)."""

from negev_audio.plugin import AudioPlugin

__all__ = ["AudioPlugin"]
