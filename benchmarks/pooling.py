"""Forward + backward speed and memory of ``wildcat_pool`` against the full-sort reference.

The reference is the approach of the original 2017 WILDCAT code: sort every region, average both
ends. Ours selects the ends with ``topk`` (a selection, no full sort).

Run:  python benchmarks/pooling.py [--device cpu|cuda] [--threads 2] [--repeats 15]
Writes benchmarks/results/pooling.md (or pooling_<device>.md for a non-CPU device).
"""

from __future__ import annotations

import argparse
import itertools
import platform
from functools import partial
from pathlib import Path

import torch

from benchmarks._timing import median_times, peak_cuda_bytes, saved_for_backward_bytes
from negev.nn.functional import wildcat_pool
from negev.testing import sort_wildcat_pool

BATCHES = (8, 64)
CLASSES = (20, 80)
GRIDS = (7, 14, 28)
KS = (1, 0.1, 0.5)
ALPHA = 0.7


def step(pool, scores: torch.Tensor, k: float | int) -> torch.Tensor:
    out = pool(scores, k, k, ALPHA)
    out.sum().backward()
    return out


def run(device: torch.device, repeats: int) -> list[dict]:
    rows = []
    for batch, classes, grid, k in itertools.product(BATCHES, CLASSES, GRIDS, KS):
        gen = torch.Generator().manual_seed(0)
        scores = torch.randn(batch, classes, grid, grid, generator=gen).to(device)
        scores.requires_grad_(True)
        fns = {
            "ours": partial(step, wildcat_pool, scores, k),
            "reference": partial(step, sort_wildcat_pool, scores, k),
        }
        # the two must agree before they are timed
        torch.testing.assert_close(
            wildcat_pool(scores, k, k, ALPHA), sort_wildcat_pool(scores, k, k, ALPHA)
        )
        times = median_times(fns, device, repeats=repeats)
        mem = {
            name: saved_for_backward_bytes(partial(p, scores, k, k, ALPHA))
            for name, p in (("ours", wildcat_pool), ("reference", sort_wildcat_pool))
        }
        peak = {name: peak_cuda_bytes(fn, device) for name, fn in fns.items()}
        regions = grid * grid
        k_regions = max(1, round(k * regions)) if k < 1 else k
        rows.append(
            {
                "B": batch,
                "C": classes,
                "regions": f"{grid}x{grid}",
                "k": k,
                "k_frac": k_regions / regions,
                "ours_ms": times["ours"] * 1e3,
                "ref_ms": times["reference"] * 1e3,
                "speedup": times["reference"] / times["ours"],
                "mem_ours": mem["ours"],
                "mem_ref": mem["reference"],
                "peak_ours": peak["ours"],
                "peak_ref": peak["reference"],
            }
        )
        print(
            f"B={batch:3d} C={classes:3d} {grid:2d}x{grid:<2d} k={k:<4} "
            f"speedup {rows[-1]['speedup']:.2f}x  saved-memory ratio "
            f"{mem['reference'] / mem['ours']:.1f}x",
            flush=True,
        )
    return rows


def to_markdown(rows: list[dict], device: torch.device, threads: int) -> str:
    small = [r for r in rows if r["k_frac"] <= 0.05]
    lines = [
        "# wildcat_pool vs full-sort reference: forward + backward",
        "",
        f"Device: {device} ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {threads} threads; alpha={ALPHA}, kmin=kmax=k. "
        "Command: `python -m benchmarks.pooling`.",
        "",
        "speedup = reference time / our time, both measured in this run (median of interleaved "
        "repeats). memory = bytes autograd keeps for backward (distinct storages)"
        + ("; peak = extra CUDA memory at peak." if device.type == "cuda" else "."),
        "",
        f"- slowest cell: {min(r['speedup'] for r in rows):.2f}x (goal: never slower, >= 1)",
        f"- cells with k <= 5% of the regions: min {min(r['speedup'] for r in small):.2f}x "
        f"(goal: >= 2x)",
        "",
        "| B | C | regions | k | speedup | ours ms | reference ms | memory ours "
        "| memory reference |" + (" peak ours | peak reference |" if device.type == "cuda" else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if device.type == "cuda" else ""),
    ]
    for r in rows:
        line = (
            f"| {r['B']} | {r['C']} | {r['regions']} | {r['k']} | **{r['speedup']:.2f}x** | "
            f"{r['ours_ms']:.3f} | {r['ref_ms']:.3f} | {_size(r['mem_ours'])} | "
            f"{_size(r['mem_ref'])} |"
        )
        if device.type == "cuda":
            line += f" {_size(r['peak_ours'])} | {_size(r['peak_ref'])} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = run(device, args.repeats)
    name = "pooling.md" if device.type == "cpu" else f"pooling_{device.type}.md"
    out = args.out or Path(__file__).parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(rows, device, args.threads))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
