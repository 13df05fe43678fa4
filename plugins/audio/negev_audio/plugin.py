"""The ``audio`` modality: time frames of a log-mel spectrogram are the regions."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from PIL import Image, ImageDraw
from torch import Tensor

from negev.inference import ItemPrediction
from negev.inference.outputs import region_map, save_region_map
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import item_stem, write_file
from negev_audio.augment import augment_wave
from negev_audio.clips import Waveform, read_clip
from negev_audio.data import read_csv
from negev_audio.detection import segment_f1
from negev_audio.encoders import LogMel, MelCNNEncoder
from negev_audio.options import AudioOptions
from negev_audio.sed import PSDS1, PSDS2, collar_f1, frame_timestamps, psds
from negev_audio.synth import synth_demo

FOR, AGAINST, EVENT = (0, 170, 0), (210, 0, 0), (225, 225, 240)
_FITTED = ("sample_rate", "hop", "n_mels", "time_masks", "freq_masks", "mask_width")


class AudioPlugin(ModalityPlugin):
    """Clips from a CSV of ``path,labels[,events]`` (WAV/FLAC/OGG); the built-in demo (no
    ``--data``, or ``demo``) is synthetic tones, chirps, clicks and noise bursts.

    Plugin options: :class:`~negev_audio.options.AudioOptions` (``negev plugins --options
    audio``). Augmentation (``augment``, training only): a circular time shift and
    SpecAugment-style masks.
    """

    name = "audio"
    description = "Audio clips: log-mel time frames as regions, weak sound event tags"
    options_class = AudioOptions

    def __init__(self) -> None:
        self.load_state({})

    def default_config(self) -> dict[str, Any]:
        return {
            "epochs": 10,
            "batch_size": 32,
            "lr": 3e-3,
            "pooling": "wildcat",
            "kmax": 0.1,
            "kmin": 0.1,
            "alpha": 0.7,
            "num_maps": 1,
        }

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        options = self.options_of(config)
        if spec is None or spec == "demo":
            return synth_demo((options.demo_train, options.demo_val, options.demo_test))
        path = Path(spec)
        if path.suffix != ".csv" or not path.is_file():
            raise ValueError(f"--data {spec}: expected a .csv file of path,labels[,events]")
        classes = options.classes
        seed = int(config.get("seed", 0))
        return read_csv(
            path, options.sample_rate, classes.split("|") if classes else None, seed,
            self.frontend.n_fft, options.max_seconds, config.get("labelled", True),
        )  # fmt: skip

    def fit_state(self, data: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        options = self.options_of(config)
        return {
            "sample_rate": options.sample_rate,
            "hop": options.hop,
            "n_mels": options.n_mels,
            "augment": options.augment if options.augment is not None else not data.builtin,
            "time_masks": options.time_masks,
            "freq_masks": options.freq_masks,
            "mask_width": options.mask_width,
        }

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        """``self.options``: the run's options with the fitted values (and the front end)."""
        options = self.options_of(config)
        fitted = {k: state[k] for k in _FITTED if k in state}
        options = self.options = dataclasses.replace(
            options, augment=bool(state.get("augment", False)), **fitted
        )
        self.sample_rate, self.hop, self.n_mels = options.sample_rate, options.hop, options.n_mels
        self.frontend = LogMel(self.sample_rate, self.n_mels, self.hop)
        self.augment = options.augment
        self.masks = (options.time_masks, options.freq_masks)
        self.mask_width = options.mask_width

    def _frames(self, samples: int) -> int:
        return int(self.frontend.frames(torch.tensor(samples)))

    def _frame_seconds(self, frame: float) -> float:
        """Time of the centre of ``frame`` in seconds."""
        return (frame * self.hop + self.frontend.n_fft / 2) / self.sample_rate

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        options = self.options_of(config)
        return MelCNNEncoder(self.sample_rate, self.n_mels, self.hop, options.width, options.blocks)

    def _wave(self, example: Example) -> Tensor:
        inputs = example.inputs
        if isinstance(inputs, Waveform):
            if inputs.rate == self.sample_rate:
                return inputs.samples
            return AF.resample(inputs.samples, inputs.rate, self.sample_rate)
        limit = self.options.max_seconds
        return read_clip(inputs, self.sample_rate, self.frontend.n_fft, limit)

    def load_item(
        self,
        example: Example,
        *,
        train: bool,
        generator: torch.Generator,
        view: dict[str, Any] | None = None,
    ) -> Example:
        """The example with its waveform read and resampled (a :class:`Waveform`); when
        training with ``augment``, circularly shifted and masked in time and frequency
        (:func:`negev_audio.augment.augment_wave`)."""
        wave = self._wave(example)
        if train and self.augment:
            wave = augment_wave(wave, self.sample_rate, generator, *self.masks, self.mask_width)
        return dataclasses.replace(example, inputs=Waveform(wave, self.sample_rate))

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """``{"waves": (B, S) float32 zero-padded, "lengths": (B,) int64 samples}``."""
        waves = [self._wave(e) for e in examples]
        lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
        batch = torch.zeros(len(waves), int(lengths.max()))
        for i, wave in enumerate(waves):
            batch[i, : len(wave)] = wave
        return {"waves": batch, "lengths": lengths}

    def read_input(self, text: str) -> Example:
        limit = self.options.max_seconds
        read_clip(text, self.sample_rate, self.frontend.n_fft, limit)  # fail now, naming the file
        return Example(text, text, ())

    def region_names(self, example: Example) -> list[str]:
        frames = self._frames(len(self._wave(example)))
        return [f"{self._frame_seconds(f):.2f}s" for f in range(frames)]

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """One PNG: the log-mel spectrogram, and under it per class the evidence over time (green
        bars up for, red down against), the frames the pooling kept ticked, reference events (when
        known) shaded."""
        wave = self._wave(example)
        spec, _ = self.frontend(wave[None], torch.tensor([len(wave)]))
        frames = self._frames(len(wave))
        px = max(2, 900 // frames)
        width, strip = frames * px, 60
        rows = spec[0, :, :frames].flip(0).numpy()
        gray = np.clip((rows + 2.5) / 5 * 255, 0, 255).astype(np.uint8)
        top = Image.fromarray(gray).resize((width, 4 * self.n_mels), Image.NEAREST).convert("RGB")
        sheet = Image.new("RGB", (width, top.height + 16 + len(classes) * strip), (255, 255, 255))
        sheet.paste(top, (0, 16))
        draw = ImageDraw.Draw(sheet)
        draw.text((4, 2), f"{Path(example.name).name}: log-mel spectrogram", fill=(0, 0, 0))
        for c, name in enumerate(classes):
            y0 = top.height + 16 + c * strip
            middle = y0 + strip // 2
            for k, onset, offset in example.truth.get("events", []):
                if k == c:
                    x0 = (onset - self._frame_seconds(0)) * self.sample_rate / self.hop * px
                    x1 = (offset - self._frame_seconds(0)) * self.sample_rate / self.hop * px
                    draw.rectangle((x0, y0 + 12, x1, y0 + strip - 2), fill=EVENT)
            values = maps[c, :frames]
            scale = float(values.abs().max()) or 1.0
            for f, v in enumerate(values.tolist()):
                height = v / scale * (strip // 2 - 8)
                box = (
                    f * px,
                    min(middle, middle - height),
                    f * px + px - 1,
                    max(middle, middle - height),
                )
                draw.rectangle(box, fill=FOR if v >= 0 else AGAINST)
            if selected is not None:
                for mark, colour, y in (
                    (selected[0], FOR, y0 + 12),
                    (selected[1], AGAINST, y0 + strip - 4),
                ):
                    for f in mark[c, :frames].nonzero().flatten().tolist():
                        draw.rectangle((f * px, y, f * px + px - 1, y + 2), fill=colour)
            draw.line((0, middle, width, middle), fill=(160, 160, 160))
            draw.text((4, y0 + 1), f"{name} {float(scores[c]):+.2f}", fill=(0, 0, 0))
        name = f"{item_stem(example.name)}_evidence.png"
        return [write_file(out_dir, name, lambda path: sheet.save(path, "PNG"))]

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """``maps/<id>.npy`` (C, frames) frame scores per clip, and ``events.csv`` (``id, item,
        onset, offset, class``, seconds): the runs of active frames, a frame being active where
        the clip is tagged with the class and its map reaches ``detection_threshold`` times the
        map's maximum (:func:`active_frames`, as :meth:`evidence_metrics` scores them); a run's
        ends are the frame boundaries of :func:`negev_audio.sed.frame_timestamps`."""
        threshold = self.options.detection_threshold
        path = Path(out_dir) / "events.csv"
        written = [path]
        with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as file:
            writer = csv.writer(file)  # a class name not valid Unicode: escaped, not a crash
            writer.writerow(["id", "item", "onset", "offset", "class"])
            for prediction in predictions:
                written.append(save_region_map(prediction, out_dir))
                clip = torch.from_numpy(region_map(prediction))
                duration = len(self._wave(prediction.example)) / self.sample_rate
                frames = clip.shape[1]
                edges = frame_timestamps(
                    frames, self.hop / self.sample_rate, duration, self._frame_seconds(0)
                )
                active = active_frames(clip, prediction.scores, threshold).numpy()
                for c, name in enumerate(classes):
                    padded = np.concatenate([[False], active[c], [False]]).astype(np.int8)
                    changes = np.flatnonzero(np.diff(padded))
                    for start, end in zip(changes[::2], changes[1::2], strict=True):
                        row = [prediction.id, prediction.example.name]
                        writer.writerow([*row, f"{edges[start]:.3f}", f"{edges[end]:.3f}", name])
        return written

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """Segment-based F1 (``segment`` s, default 1) of the frames a class's map marks as
        active, in clips tagged with the class (probability >= 0.5). A frame is active where its
        map reaches ``detection_threshold`` (default 0.5) times the map's maximum over the clip,
        the rule the image plugin uses for segmentation, whatever the pooling's scale of maps;
        ``segment_f1_sign`` uses ``map > 0`` instead (a frame probability above 0.5 for the
        linear-softmax and attention maps, which are frame logits). DCASE's metrics through
        ``sed_scores_eval`` (:mod:`negev_audio.sed`): ``collar_f1`` (macro) and
        ``collar_f1_micro``, event-based with 200 ms / 20 % collars, of the same active frames;
        ``psds1`` and ``psds2`` of the maps' frame scores over every threshold."""
        if scores is None:
            scores = torch.stack([m.amax(1) for m in maps])
        known = [i for i, e in enumerate(examples) if "events" in e.truth]
        if not known:
            return {}
        threshold = self.options.detection_threshold
        relative, sign, events, durations, frame_scores = [], [], [], [], []
        for i in known:
            truth = examples[i].truth
            frames = self._frames(round(truth["duration"] * self.sample_rate))
            tagged = (torch.sigmoid(scores[i]) >= 0.5).unsqueeze(1)
            clip = maps[i][:, :frames]
            relative.append(active_frames(clip, scores[i], threshold).numpy())
            sign.append(((clip > 0) & tagged).numpy())
            frame_scores.append(clip.numpy())
            events.append(truth["events"])
            durations.append(truth["duration"])
        timing = {
            "frame_seconds": self.hop / self.sample_rate,
            "segment": self.options.segment,
            "first_frame": self._frame_seconds(0),
        }
        metrics = segment_f1(relative, events, durations, **timing)
        metrics["segment_f1_sign"] = segment_f1(sign, events, durations, **timing)["segment_f1"]
        del timing["segment"]
        metrics.update(collar_f1(relative, events, durations, classes, **timing))
        metrics["psds1"] = psds(frame_scores, events, durations, classes, **timing, scenario=PSDS1)
        metrics["psds2"] = psds(frame_scores, events, durations, classes, **timing, scenario=PSDS2)
        return metrics


def active_frames(clip: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """(C, F) bool: the frames of a clip's (C, F) maps at or above ``threshold`` times each
    class's peak (a positive one), in the classes the clip is tagged with (``scores`` (C,),
    probability >= 0.5)."""
    tagged = (torch.sigmoid(scores) >= 0.5).unsqueeze(1)
    peak = clip.amax(1, keepdim=True)
    return (clip >= threshold * peak) & (peak > 0) & tagged
