"""The image plugin on its digit-canvas demo: the poolings under one CPU budget.

Each row trains the plugin's small CNN (stride 4: 16 x 16 regions on the 64 x 64 canvases, each
seeing 21 x 21 px) from
scratch on the demo's 2,000 training canvases for the same number of epochs, for two seeds; the
table gives the test split's (600 canvases, digits of unseen writers) classification mAP, Oquab's
pointing AP, Zhang's pointing game, CorLoc, the WSOL protocol's MaxBoxAcc, MaxBoxAccV2 and PxAP
(Choe et al. 2020), segmentation mIoU without and with the dense CRF, and the train time, as the
mean and half the spread of the two seeds.

Run:  python -m benchmarks.image_demo [--epochs 16] [--seeds 0 1]
Writes benchmarks/results/image.md.
"""

from __future__ import annotations

from benchmarks._runs import demo_arguments, seed_table, train_rows, write_lines

ROWS = {
    "max": {"pooling": "max", "num_maps": 1},
    "GAP": {"pooling": "gap", "num_maps": 1},
    "max+min": {"pooling": "maxmin", "alpha": 1.0, "num_maps": 1},
    "WELDON k=0.2": {"pooling": "weldon", "kmax": 0.2, "alpha": 1.0, "num_maps": 1},
    "WILDCAT M=4 k=0.2 a=0.7": {
        "pooling": "wildcat", "num_maps": 4, "kmax": 0.2, "kmin": 0.2, "alpha": 0.7
    },
    "WILDCAT M=4 k=0.2 a=0.7, AP loss": {
        "pooling": "wildcat", "num_maps": 4, "kmax": 0.2, "kmin": 0.2, "alpha": 0.7, "loss": "ap"
    },
}  # fmt: skip
COLUMNS = {
    "mAP": "test mAP",
    "pointing_ap": "pointing AP (Oquab)",
    "pointing_game": "pointing game",
    "corloc": "CorLoc",
    "max_box_acc": "MaxBoxAcc",
    "max_box_acc_v2": "MaxBoxAccV2",
    "pxap": "PxAP",
    "miou": "mIoU",
    "miou_crf": "mIoU + CRF",
    "seconds": "train s",
}


def main() -> None:
    args = demo_arguments(__doc__, "image", epochs=16, seeds=[0, 1])
    rows = {name: {**options, "plugin": {"crf": "true"}} for name, options in ROWS.items()}
    results = train_rows("image", rows, args.epochs, args.seeds)
    lines = [
        "# Image plugin: poolings on the cluttered digits demo",
        "",
        f"Small CNN from scratch (plugin defaults: stride 4, 21 px receptive field), "
        f"{args.epochs} epochs, batch 32, AdamW lr 2e-3, "
        f"CPU (2 threads); seeds {', '.join(map(str, args.seeds))}: mean ± half the spread. "
        "Command: `python -m benchmarks.image_demo`.",
        "",
        "Data: 64 x 64 canvases with 1-3 digits of 11-18 px (scikit-learn's 8 x 8 digits), 3-6 "
        "digit fragments, random strokes, smooth clutter, noise, occluded digits; 2,000 train / "
        "300 val / 600 test canvases, test digits from writers not seen in training. Pointing AP: "
        "tolerance 3 px (Oquab's 18 px at 448 px, scaled), pointing game 2 px (Zhang's 15 px, "
        "scaled); CorLoc: box around the peak where the map >= 0.5 max, IoU >= 0.5; mIoU: "
        "classes predicted present, pixels >= 0.5 of their map's maximum, else background; "
        "mIoU + CRF: those labels refined by the dense CRF (negev_image.crf, DeepLab's "
        "parameters scaled to 64 px, solved on 32 x 32). MaxBoxAcc (largest contour, IoU 0.5), "
        "MaxBoxAccV2 (every contour, mean over IoU 0.3 / 0.5 / 0.7) and PxAP over the (canvas, "
        "digit class present) pairs, bicubic maps normalised per pair, thresholds step 0.01, as "
        "wsolevaluation computes them.",
        "",
        *seed_table(results, COLUMNS),
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
