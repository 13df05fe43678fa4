"""Which tiles a trained bags model reads as evidence on the demo's validation slides.

For each run (a run directory or one of its checkpoints) trained on the built-in slide demo:
the mean centred instance evidence ``z - mean(z)`` of each tile kind (normal, stroma, tumour,
artefact), and, per slide story (tumour / artefact present or not), the mean bag score and the
share of tumour tiles among the k+ highest and of artefact tiles among the k- lowest (k from the
run's ``kmax`` / ``kmin``, 2% when the pooling has none). Validation slides only: this is a
diagnostic for choosing a model, the test slides are not read.

Run:  python -m benchmarks.bags_evidence RUN [RUN ...] [--slides 40] [--out FILE]
Writes benchmarks/results/bags_evidence.md (or --out).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks._runs import RESULTS, write_lines
from negev.engine import load_model
from negev.engine.trainer import prepare_data

KINDS = ("normal", "stroma", "tumour", "artefact")
STORIES = {(True, False): "tumour only (+)", (True, True): "tumour and artefact (-)",
           (False, True): "artefact only (-)", (False, False): "neither (-)"}  # fmt: skip


def _count(k: float | int | None, n: int) -> int:
    """A WILDCAT k (a fraction or a count; None: 2%) as a count of the n instances."""
    k = 0.02 if k is None else k
    return max(1, min(n, round(k * n))) if k < 1 else min(int(k), n)


@torch.no_grad()
def read_run(run: Path, slides: int) -> list[str]:
    """The markdown lines of one run: evidence per tile kind and selection per slide story."""
    plugin, config, model, _ = load_model(run)
    data = prepare_data(plugin, config, None)
    model.eval()
    by_kind: dict[int, list[float]] = {k: [] for k in range(len(KINDS))}
    rows: dict[tuple[bool, bool], list[tuple[float, float, float]]] = {s: [] for s in STORIES}
    for example in data.val[:slides]:
        out = model(plugin.collate([example]))
        z = out.maps[0][0].flatten()
        kinds = example.truth["kinds"].long()
        centred = z - z.mean()
        for kind in range(len(KINDS)):
            if (kinds == kind).any():
                by_kind[kind].append(float(centred[kinds == kind].mean()))
        top = torch.topk(z, _count(config.kmax, len(z))).indices
        bottom = torch.topk(-z, _count(config.kmin, len(z))).indices
        story = (bool((kinds == 2).any()), bool((kinds == 3).any()))
        rows[story].append(
            (float(out.scores[0, 0]), float((kinds[top] == 2).float().mean()),
             float((kinds[bottom] == 3).float().mean()))
        )  # fmt: skip
    kinds_cell = ", ".join(
        f"{name} {np.mean(by_kind[k]):+.2f}" for k, name in enumerate(KINDS) if by_kind[k]
    )
    lines = [f"### {run}", "", f"pooling {config.pooling}, k+ {config.kmax}, k- {config.kmin}; "
             f"mean z - mean(z) by tile kind: {kinds_cell}", "",
             "| slide story | slides | bag score | tumour share of top k+ | "
             "artefact share of bottom k- |", "|---|---|---|---|---|"]  # fmt: skip
    for story, name in STORIES.items():
        found = np.array(rows[story]).reshape(-1, 3)
        if len(found):
            score, tumour, artefact = found.mean(0)
            cells = f"{len(found)} | {score:+.2f} | {tumour:.2f} | {artefact:.2f}"
            lines.append(f"| {name} | {cells} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or checkpoints")
    parser.add_argument("--slides", type=int, default=40, help="validation slides read")
    parser.add_argument("--out", type=Path, default=RESULTS / "bags_evidence.md")
    args = parser.parse_args()
    lines = [
        "# Bags demo: what the evidence reads (validation slides)",
        "",
        f"torch {torch.__version__}, CPU. Command: "
        f"`{shlex.join(['python', '-m', 'benchmarks.bags_evidence', *sys.argv[1:]])}`.",
        "",
    ]
    for run in args.runs:
        lines += read_run(run, args.slides)
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
