"""Region encoder for audio: a log-mel front end and a small CNN; the regions are time frames."""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import Tensor, nn

from negev.plugins import RegionEncoder

__all__ = ["LogMel", "MelCNNEncoder"]


class LogMel(nn.Module):
    """Waveforms (B, S) -> log-mel spectrograms (B, n_mels, F) in dB, standardised per clip over
    its valid frames, with the frame mask (B, F) bool from the clips' lengths (B,) in samples.

    Frame f covers samples ``[f * hop, f * hop + n_fft)`` (no centring: a valid frame never sees
    the padding of a batch), so a clip of L >= n_fft samples has ``(L - n_fft) // hop + 1``
    frames, and every clip's output is the same alone or in a batch.
    """

    def __init__(self, sample_rate: int, n_mels: int = 32, hop: int = 256, n_fft: int = 512):
        super().__init__()
        self.hop, self.n_fft = hop, n_fft
        self.mel = T.MelSpectrogram(
            sample_rate,
            n_fft=n_fft,
            hop_length=hop,
            n_mels=n_mels,
            f_min=50.0,
            power=2.0,
            center=False,
        )
        self.db = T.AmplitudeToDB(stype="power", top_db=80.0)

    def forward(self, waves: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # (B, 1, n_mels, F): AmplitudeToDB's top_db floor is then taken per clip, not per batch
        spec = self.db(self.mel(waves).unsqueeze(1))[:, 0]
        frames = spec.shape[-1]
        valid = self.frames(lengths).unsqueeze(1)
        mask = torch.arange(frames, device=waves.device) < valid
        weight = mask.unsqueeze(1).to(spec.dtype)
        count = weight.sum(dim=(1, 2), keepdim=True) * spec.shape[1]
        mean = (spec * weight).sum(dim=(1, 2), keepdim=True) / count
        var = ((spec - mean) ** 2 * weight).sum(dim=(1, 2), keepdim=True) / count
        return (spec - mean) / (var.sqrt() + 1e-5) * weight, mask

    def frames(self, lengths: Tensor) -> Tensor:
        """Number of frames of clips of ``lengths`` samples (0 for a clip shorter than n_fft)."""
        return ((lengths - self.n_fft) // self.hop + 1).clamp(min=0)


class MelCNNEncoder(RegionEncoder):
    """Log-mel front end + ``blocks`` conv blocks (3x3 conv, BN, ReLU, 2x pooling in frequency
    only, so time keeps its resolution), then an average over frequency.

    ``forward({"waves": (B, S) float, "lengths": (B,) int64}) -> (features (B, D, F), mask (B, F))``
    with D = ``width * 2**(blocks - 1)`` and F frames (one region per frame, ``hop`` samples).
    Padded frames are masked out of the pooling.
    """

    def __init__(
        self, sample_rate: int, n_mels: int = 32, hop: int = 256, width: int = 16, blocks: int = 4
    ):
        super().__init__()
        self.frontend = LogMel(sample_rate, n_mels, hop)
        layers: list[nn.Module] = []
        channels = 1
        for i in range(blocks):
            out = width * 2**i
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.AvgPool2d((2, 1)) if i < blocks - 1 else nn.Identity(),
            ]
            channels = out
        self.cnn = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        spec, mask = self.frontend(inputs["waves"], inputs["lengths"])
        features = self.cnn(spec.unsqueeze(1)).mean(dim=2)  # (B, D, F)
        return features, mask
