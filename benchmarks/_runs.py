"""What the benchmark scripts share: training a modality through the engine and measuring it
over seeds, the demo benchmarks' arguments, and writing a results table."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from negev.engine import resolve_config, train

RESULTS = Path(__file__).parent / "results"


def train_and_measure(options: dict[str, Any], out: Path) -> dict[str, float]:
    """Train with ``options`` (engine options, ``modality`` included) into ``out`` (replacing a
    run there), then return the test metrics of the best checkpoint (classification and the
    plugin's evidence metrics, from the engine's one pass over the test split) and the seconds
    that took."""
    plugin, config = resolve_config({}, {**options, "out": str(out)})
    start = time.perf_counter()
    result = train(plugin, config, quiet=True, overwrite=True, evidence=True)
    return {**result.metrics, "seconds": time.perf_counter() - start}


def train_rows(
    modality: str, rows: dict[str, dict[str, Any]], epochs: int, seeds: list[int]
) -> dict[str, list[dict[str, float]]]:
    """Train every row's options for every seed (same epochs); returns each row's measurements,
    printed as they come."""
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, options) in enumerate(rows.items()):
            for seed in seeds:
                run = {"modality": modality, "epochs": epochs, "seed": seed, **options}
                metrics = train_and_measure(run, Path(tmp) / f"{index}-{seed}")
                results.setdefault(name, []).append(metrics)
                shown = {k: round(v, 3) for k, v in metrics.items()}
                print(name, "seed", seed, json.dumps(shown), flush=True)
    return results


def seed_table(results: dict[str, list[dict[str, float]]], columns: dict[str, str]) -> list[str]:
    """A Markdown table, one row per entry of ``results``: for each column key, the mean and half
    the spread over the seeds (seconds without decimals)."""

    def cell(runs: list[dict[str, float]], key: str) -> str:
        values = np.array([r[key] for r in runs])
        digits = 0 if key == "seconds" else 3
        return f"{values.mean():.{digits}f} ± {(values.max() - values.min()) / 2:.{digits}f}"

    lines = ["| pooling | " + " | ".join(columns.values()) + " |", "|---|" + "---|" * len(columns)]
    for name, runs in results.items():
        lines.append(f"| {name} | " + " | ".join(cell(runs, k) for k in columns) + " |")
    return lines


def demo_arguments(doc: str, name: str, epochs: int, seeds: list[int]) -> argparse.Namespace:
    """``--epochs``, ``--seeds`` and ``--out`` (default ``benchmarks/results/<name>.md``) of a
    plugin demo benchmark; the runs use 2 CPU threads, as the tables say."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--out", type=Path, default=RESULTS / f"{name}.md")
    torch.set_num_threads(2)
    return parser.parse_args()


def write_lines(path: Path, lines: list[str]) -> None:
    """Write a results file (folders made as needed) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
