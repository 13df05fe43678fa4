"""The bags plugin: poolings on the "tumour AND NOT artefact" slide demo, and huge bags.

Part 1: each pooling trains the plugin's defaults (standardised features beside a one-layer
MLP of 64; rows may override plugin options) through the engine on the demo's slides
(500-20,000 instances each), for several seeds;
the table gives the test slides' ROC-AUC and accuracy, the instance AUPRC of the evidence
(tumour tiles ranked by instance score: positive evidence; artefact tiles by minus the score:
negative evidence), the train time and the process's peak memory (RSS, data included).

Part 2 (scaling): one training step (forward, backward, AdamW) on one bag of n instances of
d = 1,024 features (a 1,024 -> 128 instance MLP), WELDON (k = 2%) against attention MIL, with the
plugin's chunked encoder (16,384 instances per chunk) and without it: seconds per bag and the
peak memory above the bag's own features. Every measurement runs in a fresh process.

Run:  python -m benchmarks.bags_demo [--epochs 20] [--seeds 0 1] [--skip-demo | --skip-scaling]
      [--rows NAME ...] [--scaling-rows NAME ...] [--out FILE]   (those rows only, by name)
Writes benchmarks/results/bags.md.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._runs import RESULTS, write_lines

ROWS: dict[str, dict[str, Any]] = {
    "max": {"pooling": "max"},
    "mean (GAP)": {"pooling": "gap"},
    "max+min": {"pooling": "maxmin", "alpha": 1.0},
    "WELDON k=0.02": {"pooling": "weldon", "kmax": 0.02, "alpha": 1.0},
    "WILDCAT k=0.02 a=0.7 M=4": {
        "pooling": "wildcat",
        "kmax": 0.02,
        "kmin": 0.02,
        "alpha": 0.7,
        "num_maps": 4,
    },
    "WELDON k=0.02, 4 maps each pooled alone": {
        "pooling": "wildcat",
        "kmax": 0.02,
        "kmin": 0.02,
        "alpha": 1.0,
        "num_maps": 4,
        "pool_each_map": True,
    },
    "LSE b=5/-5": {"pooling": "lse", "beta_pos": 5.0, "beta_neg": -5.0, "alpha": 1.0},
    "attention (audio tagging)": {"pooling": "attention"},
    "instance classifier + mean": {"pooling": "mimean"},
    "attention MIL (ABMIL)": {"pooling": "abmil"},
    "gated attention MIL (ABMIL eq. 9)": {"pooling": "gabmil"},
    "DSMIL": {"pooling": "dsmil"},
    "bag-mean model + WILDCAT k=0.02 of centred evidence (plugin default)": {
        "pooling": "meanwildcat"
    },
    "the same, linear scorer (former default)": {
        "pooling": "meanwildcat", "plugin": {"hidden": ()}
    },
}  # fmt: skip
DEMO = {"demo_train": 100, "demo_val": 30, "demo_test": 60}
COLUMNS = {
    "roc_auc": "bag ROC-AUC",
    "accuracy": "bag accuracy",
    "instance_auprc_pos": "tumour AUPRC (+)",
    "instance_auprc_neg": "artefact AUPRC (-)",
    "seconds": "train s",
    "peak_mb": "peak MB",
}
SIZES = (1_000, 10_000, 100_000, 200_000)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _demo_run(options: dict[str, Any]) -> dict[str, float]:
    from benchmarks._runs import train_and_measure

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train_and_measure(options, Path(tmp) / "run")
    return {**metrics, "peak_mb": _peak_mb()}


#: Scaling rows: pooling, instances per encoder chunk (10**9: the plain path), whether the
#: features stand beside the MLP's output (``skip``, the plugin default's regions [x, MLP(x)]),
#: and the maps per class (more than 1: each pooled on its own, ``pool_each_map``).
SCALING = {
    "WELDON, chunked encoder": ("weldon", 16_384, False, 1),
    "WELDON, plain": ("weldon", 10**9, False, 1),
    "attention MIL, chunked encoder": ("abmil", 16_384, False, 1),
    "attention MIL, plain": ("abmil", 10**9, False, 1),
    "plugin default (meanwildcat over [x, MLP(x)]), chunked encoder": (
        "meanwildcat", 16_384, True, 1
    ),
    "plugin default (meanwildcat over [x, MLP(x)]), plain": ("meanwildcat", 10**9, True, 1),
    "WELDON, 4 maps each pooled alone, over [x, MLP(x)], chunked encoder": (
        "weldon", 16_384, True, 4
    ),
}  # fmt: skip
POOL_PARAMS = {  # each pooling takes its own
    "weldon": {"kmax": 0.02, "alpha": 1.0},
    "meanwildcat": {"kmax": 0.02, "kmin": 0.02, "alpha": 1.0},
}


def _scaling_run(
    n: int, pooling: str, chunk: int, skip: bool = False, maps: int = 1, steps: int = 3
) -> dict[str, float]:
    import negev_bags  # noqa: F401 - registers meanwildcat
    from negev.engine.model import EvidenceModel
    from negev.nn import EvidenceHead, create_pool
    from negev_bags.encoders import InstanceEncoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    features = torch.randn(1, n, 1024)
    mask = torch.ones(1, n, dtype=torch.bool)
    encoder = InstanceEncoder(1024, (128,), chunk=chunk, skip=skip)
    params = POOL_PARAMS.get(pooling, {})
    pool = create_pool(pooling, **params)
    head = EvidenceHead(encoder.out_channels, 1, maps, pool, pool_each_map=maps > 1)
    model = EvidenceModel(encoder, head)  # as the engine runs it (the readout in the chunks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    base = _peak_mb()
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        scores = model({"features": features, "mask": mask}).scores
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, torch.ones(1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    return {"seconds": float(np.mean(times)), "peak_mb": _peak_mb(), "above_mb": _peak_mb() - base}


def _fresh(function, *args):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def demo_table(epochs: int, seeds: list[int], rows: list[str]) -> list[str]:
    results: dict[str, list[dict[str, float]]] = {}
    for name in rows:
        options = ROWS[name]
        for seed in seeds:
            plugin = {**DEMO, **options.get("plugin", {})}
            run = {"modality": "bags", "epochs": epochs, "seed": seed, **options, "plugin": plugin}
            metrics = _fresh(_demo_run, run)
            results.setdefault(name, []).append(metrics)
            shown = {k: round(metrics[k], 3) for k in COLUMNS}
            print(name, "seed", seed, shown, flush=True)

    def cell(runs, key):
        values = np.array([r[key] for r in runs])
        digits = 0 if key in ("seconds", "peak_mb") else 3
        return f"{values.mean():.{digits}f} ± {(values.max() - values.min()) / 2:.{digits}f}"

    lines = ["| pooling | " + " | ".join(COLUMNS.values()) + " |", "|---|" + "---|" * len(COLUMNS)]
    for name, runs in results.items():
        lines.append(f"| {name} | " + " | ".join(cell(runs, k) for k in COLUMNS) + " |")
    chance = next(iter(results.values()))[0]
    lines += [
        "",
        f"Chance AUPRC: tumour {chance['instance_auprc_pos_chance']:.3f}, artefact "
        f"{chance['instance_auprc_neg_chance']:.3f} (their share of the test instances).",
    ]
    return lines


def scaling_table(rows: list[str]) -> list[str]:
    lines = [
        "| model | " + " | ".join(f"n = {n:,}" for n in SIZES) + " |",
        "|---|" + "---|" * len(SIZES),
    ]
    for name in rows:
        pooling, chunk, skip, maps = SCALING[name]
        cells = []
        for n in SIZES:
            m = _fresh(_scaling_run, n, pooling, chunk, skip, maps)
            print(name, n, {k: round(v, 2) for k, v in m.items()}, flush=True)
            cells.append(f"{m['seconds']:.2f} s, +{m['above_mb']:.0f} MB (peak {m['peak_mb']:.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument("--skip-demo", action="store_true", help="only the scaling table")
    skip.add_argument("--skip-scaling", action="store_true", help="only the demo table")
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS),
        default=list(ROWS),
        metavar="NAME",
        help=f"demo rows to run (default all: {', '.join(ROWS)})",
    )
    parser.add_argument(
        "--scaling-rows",
        nargs="+",
        choices=list(SCALING),
        default=list(SCALING),
        metavar="NAME",
        help=f"scaling rows to run (default all: {', '.join(SCALING)})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "bags.md")
    args = parser.parse_args()
    demo = [] if args.skip_demo else demo_table(args.epochs, args.seeds, args.rows)
    scaling = [] if args.skip_scaling else scaling_table(args.scaling_rows)
    sizes = ", ".join(f"{v} {k.removeprefix('demo_')}" for k, v in DEMO.items())
    lines = [
        "# Bags plugin: poolings on the slide demo, and huge bags",
        "",
        f"CPU, 2 threads, torch {torch.__version__}; every run in a fresh process. "
        f"Command: `{shlex.join(['python', '-m', 'benchmarks.bags_demo', *sys.argv[1:]])}`.",
        "",
    ]
    if demo:
        lines += [
            f"## Demo: tumour AND NOT artefact ({sizes} slides, 500-20,000 instances of 32 "
            f"features each; {args.epochs} epochs, batch 8, AdamW lr 3e-3, plugin defaults: "
            f"standardised features beside a one-layer MLP of 64; seeds "
            f"{', '.join(map(str, args.seeds))}: mean ± half the spread)",
            "",
            *demo,
            "",
        ]
    if scaling:
        lines += [
            "## Scaling: one training step on one bag of n x 1,024 features (1,024 -> 128 MLP)",
            "",
            "Seconds per bag (mean of 3 steps after a warm-up), peak RSS above the process's RSS "
            "once the bag exists (its features alone take n x 4 KB: 800 MB at 200k), and the "
            "process's peak RSS in MB.",
            "",
            *scaling,
        ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
