"""DCASE metrics through sed_scores_eval (collar F1, PSDS) on cases worked out by hand, and the
DESED reader."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from negev_audio.data import read_csv
from negev_audio.desed import read_desed, write_manifest
from negev_audio.plugin import AudioPlugin
from negev_audio.sed import PSDS2, collar_f1, frame_timestamps, merge_events, psds

CLASSES = ["dog", "cat"]


def test_frame_timestamps_cover_the_clip():
    edges = frame_timestamps(10, 0.1, 1.0, first_frame=0.05)
    assert edges[0] == 0 and edges[-1] == 1.0
    assert np.allclose(edges[1:-1], np.arange(1, 10) / 10)


def test_overlapping_events_of_a_class_are_merged():
    events = [(1, 3.0, 4.0), (0, 0.5, 1.0), (1, 3.5, 4.5), (1, 4.5, 5.0), (0, 2.0, 2.5)]
    assert merge_events(events) == [(0, 0.5, 1.0), (0, 2.0, 2.5), (1, 3.0, 5.0)]
    # the collar F1 then scores one event 3-5 s: found by one detection of 3-5 s
    active = np.zeros((2, 10), dtype=bool)
    active[1, 6:10] = True
    result = collar_f1([active], [events[:1] + events[2:4]], [5.0], CLASSES, 0.5, 0.25)
    assert result["collar_f1"] == pytest.approx(1.0)


def test_collar_f1_of_an_event_list_worked_by_hand():
    # frames of 0.1 s centred at 0.05 + 0.1 f: dog active in frames 2-4 (0.2-0.5 s, the dog
    # event exactly) and 7-8 (0.7-0.9 s, a false alarm); cat active in frames 5-6 (0.5-0.7 s)
    # against a cat event 0.55-0.75 s: onset 50 ms off, offset 50 ms off, inside the 200 ms
    # collars. dog: TP 1, FP 1 -> F1 2/3; cat: F1 1; macro 5/6, micro 2 TP 1 FP -> 0.8
    active = np.zeros((2, 10), dtype=bool)
    active[0, 2:5] = active[0, 7:9] = active[1, 5:7] = True
    events = [[(0, 0.2, 0.5), (1, 0.55, 0.75)]]
    result = collar_f1([active], events, [1.0], CLASSES, 0.1, 0.05)
    assert result["collar_f1"] == pytest.approx(5 / 6)
    assert result["collar_f1_micro"] == pytest.approx(0.8)
    # a 300 ms late onset is outside the collar: the cat detection is a miss and a false alarm
    late = [[(0, 0.2, 0.5), (1, 0.2, 0.7)]]
    result = collar_f1([active], late, [1.0], CLASSES, 0.1, 0.05)
    assert result["collar_f1"] == pytest.approx((2 / 3 + 0) / 2)
    # a clip with no event and no detection changes nothing
    two = collar_f1([active, np.zeros((2, 10), bool)], events + [[]], [1.0, 1.0], CLASSES, 0.1)
    assert two["collar_f1_micro"] == pytest.approx(0.8)


def test_psds_of_score_curves_worked_by_hand():
    # one hour of audio in 10 frames of 360 s; dog scored 1 on its event (frames 1-2) and on a
    # false alarm (frame 6), cat scored 0.5 on its event (frame 4). At any threshold <= 0.5 every
    # event is found with one false positive per hour: the PSD-ROC is 1 from eFPR 1 to 100, so
    # PSDS1 = 99 / 100. Without the false alarm it is 1.
    scores = np.zeros((2, 10))
    scores[0, 1:3] = scores[0, 6] = 1.0
    scores[1, 4] = 0.5
    events = [[(0, 360.0, 1080.0), (1, 1440.0, 1800.0)]]
    assert psds([scores], events, [3600.0], CLASSES, 360.0, 180.0) == pytest.approx(0.99)
    scores[0, 6] = 0.0
    assert psds([scores], events, [3600.0], CLASSES, 360.0, 180.0) == pytest.approx(1.0)
    assert psds([scores], events, [3600.0], CLASSES, 360.0, 180.0, PSDS2) == pytest.approx(1.0)
    # the scores' scale does not matter (every threshold is swept); no event at all is NaN
    shifted = [scores * 7 - 3]
    assert psds(shifted, events, [3600.0], CLASSES, 360.0, 180.0) == pytest.approx(1.0)
    assert np.isnan(psds([scores], [[]], [3600.0], CLASSES, 360.0, 180.0))
    # a class without any reference event is left out; PSDS2 of one class has no cross-trigger
    dog_only = [[(0, 360.0, 1080.0)]]
    assert psds([scores], dog_only, [3600.0], CLASSES, 360.0, 180.0, PSDS2) == pytest.approx(1.0)


def test_desed_strong_and_weak_files_become_a_manifest(tmp_path):
    strong = tmp_path / "validation.tsv"
    strong.write_text(
        "filename\tonset\toffset\tevent_label\n"
        "a.wav\t0.5\t1.25\tDog\n"
        "a.wav\t2.0\t3.0\tAlarm_bell_ringing\n"
        "b.wav\t\t\t\n"
    )
    weak = tmp_path / "weak.tsv"
    weak.write_text("filename\tevent_labels\nc.wav\tDog,Speech\n")
    clips = read_desed(strong)
    assert clips["a.wav"] == (
        ["Alarm_bell_ringing", "Dog"],
        [("Dog", 0.5, 1.25), ("Alarm_bell_ringing", 2.0, 3.0)],
    )
    assert clips["b.wav"] == ([], [])
    assert read_desed(weak) == {"c.wav": (["Dog", "Speech"], [])}
    out = tmp_path / "desed.csv"
    assert write_manifest(out, {"train": [(weak, tmp_path / "w")], "test": [(strong, "v")]}) == 3
    rows = list(csv.DictReader(out.open()))
    assert rows[0] == {"path": "w/c.wav", "labels": "Dog|Speech", "events": "", "split": "train"}
    assert rows[1]["events"] == "Dog@0.5-1.25|Alarm_bell_ringing@2-3"
    assert rows[1]["labels"] == "Alarm_bell_ringing|Dog" and rows[2]["labels"] == ""
    # the audio files do not exist: the manifest reader reports each as a bad item
    splits = read_csv(out, 16000)
    assert len(splits.bad) == 3 and all(".wav" in b.name for b in splits.bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("filename\tonset\n", "header"),
        ("filename\tonset\toffset\tevent_label\na.wav\tx\t1\tDog\n", ":2: onset and offset"),
        ("filename\tonset\toffset\tevent_label\na.wav\t2\t1\tDog\n", ":2: needs a label"),
        ("filename\tonset\toffset\tevent_label\na.wav\t1\n", ":2: expected 4"),
    ],
)
def test_desed_reader_names_the_bad_line(tmp_path, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_desed(path)


def test_audio_plugin_feeds_the_library_frames_on_the_clip_timeline():
    # maps that are +1 exactly on the frames whose centre lies in an event of the class, -1
    # elsewhere, in clips tagged with their classes: every event is found within the collars
    plugin = AudioPlugin()
    config = {"plugin": {"demo_train": 1, "demo_val": 1, "demo_test": 12}}
    splits = plugin.load_data(None, config)
    maps, scores = [], []
    for example in splits.test:
        duration = example.truth["duration"]
        frames = plugin._frames(round(duration * plugin.sample_rate))
        centres = np.array([plugin._frame_seconds(f) for f in range(frames)])
        item = -np.ones((len(splits.classes), frames + 3), dtype=np.float32)  # padded past the end
        for c, onset, offset in example.truth["events"]:
            item[c, :frames][(centres >= onset) & (centres < offset)] = 1.0
        maps.append(torch.from_numpy(item))
        scores.append([5.0 if c in example.labels else -5.0 for c in range(len(splits.classes))])
    metrics = plugin.evidence_metrics(splits.test, maps, splits.classes, torch.tensor(scores))
    assert metrics["collar_f1"] == 1.0 and metrics["collar_f1_micro"] == 1.0
    assert metrics["psds1"] > 0.95 and metrics["psds2"] > 0.95
    flipped = plugin.evidence_metrics(splits.test, [-m for m in maps], splits.classes,
                                      torch.tensor(scores))  # fmt: skip
    assert flipped["psds1"] < 0.05


def test_collar_f1_equals_sed_evals_event_based_metrics():
    # random events and detections (misses, shifted bounds, false alarms) on the plugin's frame
    # grid; sed_eval (installed with sed_scores_eval) scores the same events directly
    import dcase_util
    import sed_eval

    rng = np.random.default_rng(1)
    classes, hop, first = ["a", "b", "c"], 0.032, 0.032
    active, events, durations, reference, estimated = [], [], [], [], []
    for i in range(12):
        duration = float(rng.uniform(3, 6))
        frames = int((duration - first) / hop)
        centres = first + np.arange(frames) * hop
        clip_active, clip_events = np.zeros((3, frames), bool), []
        for c in range(3):
            t = 0.0
            while (on := t + rng.uniform(0.2, 2.0)) + 1.0 < duration:
                off = on + rng.uniform(0.3, 1.0)
                clip_events.append((c, on, off))
                t = off + 0.1
                if rng.random() < 0.8:
                    start, end = on + rng.normal(0, 0.15), off + rng.normal(0, 0.2)
                    clip_active[c, (centres >= start) & (centres < end)] = True
            if rng.random() < 0.3:
                k = rng.integers(0, frames - 10)
                clip_active[c, k : k + 8] = True
        edges = frame_timestamps(frames, hop, duration, first)
        reference += [{"filename": f"f{i}", "event_label": classes[c], "onset": on,
                       "offset": off} for c, on, off in clip_events]  # fmt: skip
        for c in range(3):
            steps = np.diff(np.concatenate([[0], clip_active[c].astype(int), [0]]))
            for s, e in zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1), strict=True):
                estimated.append({"filename": f"f{i}", "event_label": classes[c],
                                  "onset": float(edges[s]), "offset": float(edges[e])})  # fmt: skip
        active.append(clip_active)
        events.append(clip_events)
        durations.append(duration)
    ours = collar_f1(active, events, durations, classes, hop, first)
    metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=classes, t_collar=0.2, percentage_of_length=0.2
    )
    ref = dcase_util.containers.MetaDataContainer(reference)
    est = dcase_util.containers.MetaDataContainer(estimated)
    for i in range(12):
        metrics.evaluate(ref.filter(filename=f"f{i}"), est.filter(filename=f"f{i}"))
    results = metrics.results()
    assert ours["collar_f1"] == pytest.approx(
        results["class_wise_average"]["f_measure"]["f_measure"]
    )
    assert ours["collar_f1_micro"] == pytest.approx(results["overall"]["f_measure"]["f_measure"])
