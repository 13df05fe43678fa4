"""Speed of the structured AP loss (forward + backward) against a NumPy loop and a surrogate.

- ours: ``negev.nn.functional.ap_svm_loss`` (sort + divide-and-conquer exact inference, torch).
- reference: ``negev.testing.loop_ap_svm``, Yue et al.'s greedy algorithm in NumPy, looping over
  columns and negatives as the original authors' Python code does; it returns the loss and the
  gradient, so it covers forward + backward.
- Smooth-AP: a sigmoid-relaxed AP loss (Brown et al. 2020, tau = 0.01) written here for context:
  O(N^2) memory per column, skipped where N^2 C is too large.

Run:  python -m benchmarks.ap_loss [--threads 2]
Writes benchmarks/results/ap_loss.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from negev.nn.functional import ap_svm_loss
from negev.testing import loop_ap_svm

SIZES = (64, 256, 1024, 4096)
COLUMNS = (1, 20, 80)
POSITIVE_RATE = 0.25
SMOOTH_AP_LIMIT = 120_000_000  # N^2 C elements


def smooth_ap_loss(scores: torch.Tensor, targets: torch.Tensor, tau: float = 0.01) -> torch.Tensor:
    """1 - Smooth-AP per column, averaged: ranks relaxed with sigmoid((s_j - s_i) / tau)."""
    cols = scores.t()  # (C, N)
    pos = targets.t().to(scores.dtype)
    above = torch.sigmoid((cols.unsqueeze(1) - cols.unsqueeze(2)) / tau)  # [c, i, j]: j above i
    above = above * (1 - torch.eye(cols.shape[1], dtype=scores.dtype))
    rank_all = 1 + above.sum(2)
    rank_pos = 1 + (above * pos.unsqueeze(1)).sum(2)
    ap = (pos * rank_pos / rank_all).sum(1) / pos.sum(1).clamp(min=1)
    return (1 - ap).mean()


def _time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> list[dict]:
    rows = []
    for n in SIZES:
        for c in COLUMNS:
            rng = np.random.default_rng(n * 100 + c)
            scores = rng.normal(size=(n, c))
            targets = rng.random((n, c)) < POSITIVE_RATE
            targets[0] = True  # every column has a positive and a negative
            targets[1] = False
            scores_t = torch.tensor(scores, dtype=torch.float32, requires_grad=True)
            targets_t = torch.tensor(targets)

            def ours(scores_t=scores_t, targets_t=targets_t):
                scores_t.grad = None
                ap_svm_loss(scores_t, targets_t).backward()

            def reference(scores=scores, targets=targets):
                loop_ap_svm(scores, targets)

            # the two agree before they are timed
            expected, _ = loop_ap_svm(scores, targets)
            got = ap_svm_loss(scores_t.double(), targets_t, "none").detach().numpy()
            np.testing.assert_allclose(got, expected, atol=1e-8)
            ours()
            ref_once = _time(reference, 1)
            ref_repeats = max(1, min(5, int(2.0 / ref_once)))
            rounds = 3
            ours_times, ref_times = [], [ref_once]
            for _ in range(rounds):  # interleave: each round times both
                ours_times.append(_time(ours, 7))
                ref_times.append(_time(reference, ref_repeats))
            row = {
                "N": n,
                "C": c,
                "ours_ms": statistics.median(ours_times) * 1e3,
                "ref_ms": statistics.median(ref_times) * 1e3,
            }
            if n * n * c <= SMOOTH_AP_LIMIT:
                smooth_scores = scores_t.detach().clone().requires_grad_(True)

                def smooth(smooth_scores=smooth_scores, targets_t=targets_t):
                    smooth_scores.grad = None
                    smooth_ap_loss(smooth_scores, targets_t).backward()

                smooth()
                row["smooth_ms"] = _time(smooth, 3) * 1e3
            row["speedup"] = row["ref_ms"] / row["ours_ms"]
            rows.append(row)
            print(
                f"N={n:5d} C={c:3d} ours {row['ours_ms']:9.2f} ms  loop {row['ref_ms']:10.1f} ms"
                f"  speedup {row['speedup']:6.1f}x"
                + (f"  smooth-AP {row['smooth_ms']:9.2f} ms" if "smooth_ms" in row else ""),
                flush=True,
            )
    return rows


def to_markdown(rows: list[dict], threads: int) -> str:
    by = {(r["N"], r["C"]): r for r in rows}
    lines = [
        "# Structured AP loss: forward + backward",
        "",
        f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{threads} threads, float32 scores, {POSITIVE_RATE:.0%} positives per column. "
        "Command: `python -m benchmarks.ap_loss`.",
        "",
        "speedup = NumPy loop reference time / our time, measured in this run (medians of "
        "interleaved rounds). Smooth-AP (sigmoid-relaxed AP, O(N^2) per column) is shown for "
        "context; '-' where its N^2 C matrix is too large.",
        "",
        f"- N=1024, C=20: **{by[(1024, 20)]['speedup']:.1f}x** (goal: >= 50x)",
        "- growth of our time, C=20: "
        + ", ".join(
            f"N {a}->{b}: x{by[(b, 20)]['ours_ms'] / by[(a, 20)]['ours_ms']:.1f}"
            for a, b in zip(SIZES, SIZES[1:], strict=False)
        )
        + " (N log N alone gives x4.4-4.8 per step, P*Q gives x16)",
        "",
        "| N | C | ours ms | NumPy loop ms | speedup | Smooth-AP ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        smooth = f"{r['smooth_ms']:.2f}" if "smooth_ms" in r else "-"
        lines.append(
            f"| {r['N']} | {r['C']} | {r['ours_ms']:.2f} | {r['ref_ms']:.1f} | "
            f"**{r['speedup']:.1f}x** | {smooth} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "ap_loss.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_markdown(rows, args.threads))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
