"""The audio plugin: clip reading, the CSV reader, the front end's mask, segment F1 against a
fine time-grid reference, the demo, and the CLI end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from typer.testing import CliRunner

from negev.plugins import Example, get_plugin
from negev_audio.clips import read_clip
from negev_audio.data import parse_events, read_csv
from negev_audio.detection import segment_f1
from negev_audio.encoders import LogMel, MelCNNEncoder
from negev_audio.synth import EVENTS, RATE, synth_demo
from negev_cli.app import app


def tone(seconds=1.0, rate=8000, freq=440.0, amplitude=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_read_clip_resamples_mixes_down_and_names_bad_files(tmp_path):
    stereo = np.stack([tone(1.0, 16000), tone(1.0, 16000)], axis=1)
    soundfile.write(tmp_path / "a.flac", stereo, 16000)
    wave = read_clip(tmp_path / "a.flac", 8000)
    assert wave.shape == (8000,) and wave.dtype == torch.float32
    spectrum = np.abs(np.fft.rfft(wave.numpy()))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over 1 s: the tone survived resampling
    soundfile.write(tmp_path / "quiet.wav", np.zeros(800, np.float32), 8000)
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 8000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEjunk")
    soundfile.write(tmp_path / "short.wav", tone(0.01), 8000)
    cases = {
        "quiet.wav": "silent clip",
        "empty.wav": "empty clip",
        "junk.wav": "cannot read audio",
        "short.wav": "clip too short",
        "none.wav": "no such audio file",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=f"{name}: {message}"):
            read_clip(tmp_path / name, 8000, min_samples=512)


def test_parse_events():
    assert parse_events("dog@0.5-1.25| siren@2-4.1", ["dog", "siren"]) == [
        (0, 0.5, 1.25),
        (1, 2.0, 4.1),
    ]
    for text, message in [
        ("dog@2-1", "needs 0 <= onset < offset"),
        ("cat@0-1", "unknown label 'cat'"),
        ("dog 0-1", "is not class@onset-offset"),
        ("dog@a-1", "non-numeric"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_events(text, ["dog", "siren"])


def test_csv_reader_reports_every_bad_row(tmp_path):
    for name in ("a", "a2", "a3", "a4"):
        soundfile.write(tmp_path / f"{name}.wav", tone(2.0), 8000)
    for name in ("b", "b2"):
        soundfile.write(tmp_path / f"{name}.wav", tone(1.0, freq=300), 8000)
    soundfile.write(tmp_path / "quiet.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "clips.csv").write_text(
        "path,labels,events,split\n"
        "a.wav,beep,beep@0.2-0.9,train\nb.wav,,,test\nquiet.wav,beep,,train\n"
        "a2.wav,dog,,val\nmissing.wav,beep,,val\na2.wav,beep,beep@3-1,val\n"
        "a3.wav,beep,beep@1.5-2.6,val\na4.wav,beep,hum@0-1,val\nb2.wav,beep,beep@0.5-1.04,val\n"
        "a.wav,beep,,test\n"
    )
    data = read_csv(tmp_path / "clips.csv", 8000, classes=["beep", "hum"])
    assert [e.labels for e in data.train] == [(0,)] and [e.labels for e in data.test] == [()]
    assert data.train[0].truth == {"events": [(0, 0.2, 0.9)], "duration": 2.0}
    assert data.test[0].truth == {}
    reasons = {b.name: b.reason for b in data.bad}
    assert reasons["clips.csv:4 (quiet.wav)"].startswith("silent clip")
    assert reasons["clips.csv:5 (a2.wav)"] == "unknown label 'dog' (classes: beep, hum)"
    assert reasons["clips.csv:6 (missing.wav)"] == "no such audio file"
    assert "needs 0 <= onset < offset" in reasons["clips.csv:7 (a2.wav)"]
    assert reasons["clips.csv:8 (a3.wav)"] == "event 'beep@1.5-2.6' ends after the clip (2.000 s)"
    assert "'hum@0-1' is of a class the labels do not list" in reasons["clips.csv:9 (a4.wav)"]
    assert reasons["clips.csv:11 (a.wav)"] == "listed again (first at line 2)"
    assert len(reasons) == 7
    # an offset within rounding of the end is cut to the end
    assert data.val[0].truth == {"events": [(0, 0.5, 1.0)], "duration": 1.0}


def test_front_end_masks_the_padding_of_shorter_clips():
    front = LogMel(8000, n_mels=16, hop=200)
    waves = torch.zeros(2, 8000)
    waves[0] = torch.from_numpy(tone(1.0))
    waves[1, :4000] = torch.from_numpy(tone(0.5))
    spec, mask = front(waves, torch.tensor([8000, 4000]))
    # (8000 - 512) // 200 + 1 = 38 and (4000 - 512) // 200 + 1 = 18 frames
    assert spec.shape == (2, 16, 38) and mask.sum(1).tolist() == [38, 18]
    assert (spec[1][:, ~mask[1]] == 0).all()
    valid = spec[1][:, mask[1]]
    assert abs(float(valid.mean())) < 1e-4 and float(valid.std(unbiased=False)) == pytest.approx(
        1, rel=1e-3
    )
    # the short clip's frames do not depend on how much padding follows them
    alone, _ = front(waves[1:, :4000], torch.tensor([4000]))
    torch.testing.assert_close(alone[0], valid, atol=1e-4, rtol=1e-4)
    encoder = MelCNNEncoder(8000, n_mels=16, hop=200, width=4, blocks=3)
    features, mask = encoder({"waves": waves, "lengths": torch.tensor([8000, 4000])})
    assert features.shape == (2, 16, 38) and mask.shape == (2, 38)


def fine_grid_segment_f1(predicted, events, durations, frame_seconds, segment):
    """The same metric on a 1 ms time grid: independent of the segment-index arithmetic."""
    tp = fp = fn = 0
    for active, clip_events, duration in zip(predicted, events, durations, strict=True):
        for k in range(math.ceil(duration / segment - 1e-9)):
            for c in range(active.shape[0]):
                times = np.arange(k * segment, (k + 1) * segment, 0.001)
                ref = any(
                    ((times >= on) & (times < off)).any() for cc, on, off in clip_events if cc == c
                )
                frame_times = np.nonzero(active[c])[0] * frame_seconds
                out = bool(((frame_times >= k * segment) & (frame_times < (k + 1) * segment)).any())
                tp += ref and out
                fp += out and not ref
                fn += ref and not out
    return 2 * tp / (2 * tp + fp + fn)


def test_segment_f1_matches_a_fine_grid_reference():
    rng = np.random.default_rng(0)
    predicted, events, durations = [], [], []
    for _ in range(12):
        duration = float(rng.uniform(2, 5))
        frames = int(duration / 0.032) + 1
        predicted.append(rng.random((3, frames)) < 0.05)
        clip = []
        for _ in range(int(rng.integers(0, 4))):
            on = float(rng.uniform(0, duration - 0.2))
            clip.append(
                (int(rng.integers(3)), on, min(duration, on + float(rng.uniform(0.1, 1.5))))
            )
        events.append(clip)
        durations.append(duration)
    ours = segment_f1(predicted, events, durations, 0.032, 1.0)["segment_f1"]
    assert ours == pytest.approx(fine_grid_segment_f1(predicted, events, durations, 0.032, 1.0))
    perfect = [np.zeros((1, 101), bool)]
    perfect[0][0, 30:60] = True  # 0.3 s to 0.59 s at 10 ms frames: segment 0 only
    assert segment_f1(perfect, [[(0, 0.25, 0.7)]], [1.0], 0.01)["segment_f1"] == 1.0


def test_demo_is_deterministic_and_labelled_by_its_events():
    first, again = synth_demo((20, 2, 5)), synth_demo((20, 2, 5))
    assert all(
        torch.equal(a.inputs.samples, b.inputs.samples)
        for a, b in zip(first.train, again.train, strict=True)
    )
    assert first.classes == EVENTS and first.builtin
    lengths = {len(e.inputs.samples) for e in first.train}
    assert len(lengths) > 1 and min(lengths) >= 3 * RATE
    for example in first.train:
        events = example.truth["events"]
        assert tuple(sorted({c for c, _, _ in events})) == example.labels
        assert all(0 <= on < off <= example.truth["duration"] for _, on, off in events)


@pytest.mark.parametrize("pooling", ["wildcat", "attention"])
def test_cli_train_evaluate_explain(tmp_path, pooling):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--modality", "audio", "--out", str(run), "--epochs", "1", "--quiet",
        "--pooling", pooling, "--set", "demo_train=32", "--set", "demo_val=8",
        "--set", "demo_test=16", "--set", "width=4",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation_test.json").read_text())
    assert 0 <= metrics["mAP"] <= 1 and 0 <= metrics["segment_f1"] <= 1
    assert 0 <= metrics["segment_f1_sign"] <= 1
    soundfile.write(tmp_path / "beep.wav", tone(2.0, 16000), 16000)
    result = runner.invoke(
        app, ["explain", "--checkpoint", str(run), "--input", str(tmp_path / "beep.wav")]
    )
    assert result.exit_code == 0, result.output
    assert "s (" in result.output  # frames listed by time
    with Image.open(next((run / "explanations").glob("beep-*_evidence.png"))) as image:
        assert image.height == 16 + 4 * 32 + 4 * 60


def test_plugin_detection_rules_on_a_crafted_map():
    plugin = get_plugin("audio")
    plugin.load_state({})
    plugin.load_data(None, {"plugin": {"demo_train": 1, "demo_val": 1, "demo_test": 1}})
    frames = plugin._frames(3 * RATE)
    times = np.array([plugin._frame_seconds(f) for f in range(frames)])
    class_map = torch.full((4, frames), -1.0)
    class_map[0] = 0.2  # weakly positive everywhere...
    class_map[0, (times >= 1.0) & (times < 2.0)] = 2.0  # ...strong inside the event
    example = Example("clip", None, (0,), {"events": [(0, 1.0, 2.0)], "duration": 3.0})
    scores = torch.tensor([[3.0, -3.0, -3.0, -3.0]])
    metrics = plugin.evidence_metrics([example], [class_map], EVENTS, scores)
    assert metrics["segment_f1"] == 1.0
    assert metrics["segment_f1_sign"] == pytest.approx(2 / (2 + 2))  # 1 TP, 2 FP segments
    untagged = plugin.evidence_metrics([example], [class_map], EVENTS, -scores)
    assert untagged["segment_f1"] == 0.0 and untagged["segment_recall"] == 0.0
