"""The audio plugin on its synthetic sound-event demo: negative-evidence poolings against the
two audio-tagging poolings people compare with (linear softmax, attention).

Each row trains the plugin's log-mel CNN from scratch on the demo's 1,200 training clips for the
same number of epochs, for two seeds; the table gives the test split's (400 clips) tagging mAP,
segment-based F1 on 1 s segments (frames where a tagged class's map reaches half its maximum
over the clip) with its precision and recall, the same F1 with frames where the map is positive,
DCASE's event-based collar F1 of the same frames and PSDS1 / PSDS2 of the frame scores (through
sed_scores_eval), and the train time, as the mean and half the spread of the two seeds.

Run:  python -m benchmarks.audio_demo [--epochs 10] [--seeds 0 1]
Writes benchmarks/results/audio.md.
"""

from __future__ import annotations

from benchmarks._runs import demo_arguments, seed_table, train_rows, write_lines

ROWS = {
    "max": {"pooling": "max"},
    "GAP": {"pooling": "gap"},
    "max+min": {"pooling": "maxmin", "alpha": 1.0},
    "WELDON k=0.1": {"pooling": "weldon", "kmax": 0.1, "alpha": 1.0},
    "WILDCAT k=0.1 a=0.7": {"pooling": "wildcat", "kmax": 0.1, "kmin": 0.1, "alpha": 0.7},
    "linear softmax": {"pooling": "linsoft"},
    "attention": {"pooling": "attention"},
}
COLUMNS = {
    "mAP": "tagging mAP",
    "segment_f1": "segment F1 (1 s)",
    "segment_precision": "precision",
    "segment_recall": "recall",
    "segment_f1_sign": "segment F1, map > 0",
    "collar_f1": "collar F1 (macro)",
    "psds1": "PSDS1",
    "psds2": "PSDS2",
    "seconds": "train s",
}


def main() -> None:
    args = demo_arguments(__doc__, "audio", epochs=10, seeds=[0, 1])
    results = train_rows("audio", ROWS, args.epochs, args.seeds)
    lines = [
        "# Audio plugin: poolings on the synthetic sound-event demo",
        "",
        f"Log-mel (8 kHz, 32 mels, hop 256 = 32 ms) CNN from scratch (plugin defaults), "
        f"{args.epochs} epochs, batch 32, AdamW lr 3e-3, CPU (2 threads); seeds "
        f"{', '.join(map(str, args.seeds))}: mean ± half the spread. "
        "Command: `python -m benchmarks.audio_demo`.",
        "",
        "Data: 3-6 s clips with 0-3 events (tone, chirp, clicks, noise burst; 0.3-1 s each) at "
        "random times and loudness over background noise; 1,200 train / 200 val / 400 test clips; "
        "clip tags for training, onsets and offsets for evaluation only. Frame activity: in a clip "
        "tagged with the class (probability >= 0.5), frames where the class map reaches 0.5 of "
        "its maximum over the clip (the threshold the image plugin uses for segmentation, fixed "
        'before any run); the segment F1 column "map > 0" uses map > 0 instead. Collar F1: '
        "runs of the same active frames as events, onset within 200 ms and offset within "
        "max(200 ms, 20 %) of a reference event, macro over the 4 classes (sed_scores_eval). "
        "PSDS1 / PSDS2: DCASE task 4's scenarios over the raw frame scores of the maps, every "
        "threshold, eFPR up to 100 per hour (the test set is ~30 min of audio).",
        "",
        *seed_table(results, COLUMNS),
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
