"""Speed of the structured AP loss (forward + backward) against a NumPy loop and a surrogate.

- ours: ``negev.nn.functional.ap_svm_loss`` (sort + multilevel exact inference, torch).
- reference: ``negev.testing.loop_ap_svm``, Yue et al.'s greedy algorithm in NumPy, looping over
  columns and negatives as the original authors' Python code does; it returns the loss and the
  gradient, so it covers forward + backward.
- Smooth-AP: a sigmoid-relaxed AP loss (Brown et al. 2020, tau = 0.01) written here for context:
  O(N^2) memory per column, skipped where N^2 C is too large.
- ops / kernels: the operators (``aten::``, views left out) and, on CUDA, the kernels one call
  runs, counted by ``torch.profiler`` (see ``benchmarks._timing.launches``).

On CUDA (``--device cuda``) the sizes grow to 65,536 rows and the loop (a CPU program) is only
used to check the loss up to N = 4,096; the context columns are one sort of the same scores and
the binary cross-entropy (forward + backward) on them.

Run:  python -m benchmarks.ap_loss [--device cpu|cuda] [--threads 2]
Writes benchmarks/results/ap_loss.md (ap_loss_cuda.md on CUDA).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._runs import RESULTS, write_lines
from benchmarks._timing import kernel_breakdown, launches, median_times
from negev.nn.functional import _ap_triton, ap_svm_loss
from negev.testing import loop_ap_svm

SIZES = (64, 256, 1024, 4096)
COLUMNS = (1, 20, 80)
CUDA_SIZES = ((1024, 20), (4096, 20), (4096, 80), (16384, 80), (65536, 20))
LOOP_CHECK_LIMIT = 4096  # rows up to which the loop checks the loss on CUDA
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


def problem(n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Normal scores, 25% positives; every column has a positive and a negative."""
    rng = np.random.default_rng(n * 100 + c)
    scores = rng.normal(size=(n, c))
    targets = rng.random((n, c)) < POSITIVE_RATE
    targets[0] = True
    targets[1] = False
    return scores, targets


def step(scores: torch.Tensor, targets: torch.Tensor, loss=ap_svm_loss) -> None:
    scores.grad = None
    loss(scores, targets).backward()


def unchecked(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss on the hot path: no value checks (validate_args=False), so no host read."""
    return ap_svm_loss(scores, targets, validate_args=False)


def run_cpu() -> list[dict]:
    device = torch.device("cpu")
    rows = []
    for n in SIZES:
        for c in COLUMNS:
            scores, targets = problem(n, c)
            scores_t = torch.tensor(scores, dtype=torch.float32, requires_grad=True)
            targets_t = torch.tensor(targets)

            def ours(scores_t=scores_t, targets_t=targets_t):
                step(scores_t, targets_t)

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
                "ops": launches(ours, device)[0],
            }
            if n * n * c <= SMOOTH_AP_LIMIT:
                smooth_scores = scores_t.detach().clone().requires_grad_(True)

                def smooth(smooth_scores=smooth_scores, targets_t=targets_t):
                    step(smooth_scores, targets_t, smooth_ap_loss)

                smooth()
                row["smooth_ms"] = _time(smooth, 3) * 1e3
            row["speedup"] = row["ref_ms"] / row["ours_ms"]
            rows.append(row)
            print(
                f"N={n:5d} C={c:3d} ours {row['ours_ms']:9.2f} ms ({row['ops']} ops)  "
                f"loop {row['ref_ms']:10.1f} ms  speedup {row['speedup']:6.1f}x"
                + (f"  smooth-AP {row['smooth_ms']:9.2f} ms" if "smooth_ms" in row else ""),
                flush=True,
            )
    return rows


# Calls timed back to back per sample on a GPU: a training loop's throughput, not a round trip.
CUDA_CALLS = 10


def run_cuda(device: torch.device, repeats: int) -> list[dict]:
    rows = []
    for n, c in CUDA_SIZES:
        scores, targets = problem(n, c)
        scores_t = torch.tensor(scores, dtype=torch.float32, device=device, requires_grad=True)
        targets_t = torch.tensor(targets, device=device)
        # the loss agrees with the loop (small N) or with the CPU (validated against the loop
        # by the tests) before it is timed
        got = ap_svm_loss(scores_t.double(), targets_t, "none").detach().cpu().numpy()
        if n <= LOOP_CHECK_LIMIT:
            expected = loop_ap_svm(scores, targets)[0]
        else:
            expected = ap_svm_loss(torch.tensor(scores), torch.tensor(targets), "none").numpy()
        np.testing.assert_allclose(got, expected, atol=1e-8)
        fast = ap_svm_loss(scores_t, targets_t, "none", validate_args=False)  # the path timed
        np.testing.assert_allclose(fast.detach().cpu().numpy(), expected, atol=1e-5)
        bce_scores = scores_t.detach().clone().requires_grad_(True)
        targets_f = targets_t.float()
        fns = {
            "ours": lambda s=scores_t, t=targets_t: step(s, t, unchecked),
            "checked": lambda s=scores_t, t=targets_t: step(s, t),
            "sort": lambda s=scores_t: s.detach().sort(dim=0),
            "bce": lambda s=bce_scores, t=targets_f: step(
                s, t, torch.nn.functional.binary_cross_entropy_with_logits
            ),
        }
        times = median_times(fns, device, repeats=repeats, calls=CUDA_CALLS)
        ops, kernels = launches(fns["ours"], device)
        by_kernel = kernel_breakdown(fns["ours"], device)
        rows.append(
            {
                "N": n,
                "C": c,
                **{f"{k}_ms": v * 1e3 for k, v in times.items()},
                "ops": ops,
                "kernels": kernels,
                "kernel_ms": sum(by_kernel.values()) * 1e3,
                "by_kernel": by_kernel,
            }
        )
        print(
            f"N={n:6d} C={c:3d} ours {times['ours'] * 1e3:8.3f} ms ({kernels} kernels, {ops} ops)"
            f"  sort {times['sort'] * 1e3:7.3f} ms  bce {times['bce'] * 1e3:7.3f} ms",
            flush=True,
        )
    return rows


def cpu_table(rows: list[dict], threads: int) -> list[str]:
    by = {(r["N"], r["C"]): r for r in rows}
    lines = [
        "# Structured AP loss: forward + backward",
        "",
        f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{threads} threads, float32 scores, {POSITIVE_RATE:.0%} positives per column. "
        f"Command: `python -m benchmarks.ap_loss"
        f"{f' --threads {threads}' if threads != 2 else ''}`.",
        "",
        "speedup = NumPy loop reference time / our time, measured in this run (medians of "
        "interleaved rounds). ops = operators one call (forward + backward) runs, counted by "
        "torch.profiler (outermost `aten::` operators, views left out). Smooth-AP "
        "(sigmoid-relaxed AP, O(N^2) per column) is shown for context; '-' where its N^2 C "
        "matrix is too large.",
        "",
        f"- N=1024, C=20: **{by[(1024, 20)]['speedup']:.1f}x** (goal: >= 50x), "
        f"{by[(1024, 20)]['ops']} ops per call (goal: < 100)",
        f"- most ops per call: {max(r['ops'] for r in rows)}",
        "- growth of our time, C=20: "
        + ", ".join(
            f"N {a}->{b}: x{by[(b, 20)]['ours_ms'] / by[(a, 20)]['ours_ms']:.1f}"
            for a, b in zip(SIZES, SIZES[1:], strict=False)
        )
        + " (N log N alone gives x4.4-4.8 per step, P*Q gives x16)",
        "",
        "| N | C | ours ms | ops | NumPy loop ms | speedup | Smooth-AP ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        smooth = f"{r['smooth_ms']:.2f}" if "smooth_ms" in r else "-"
        lines.append(
            f"| {r['N']} | {r['C']} | {r['ours_ms']:.2f} | {r['ops']} | {r['ref_ms']:.1f} | "
            f"**{r['speedup']:.1f}x** | {smooth} |"
        )
    return lines


def cuda_table(rows: list[dict], device: torch.device) -> list[str]:
    by = {(r["N"], r["C"]): r for r in rows}
    lines = [
        "# Structured AP loss on a GPU: forward + backward",
        "",
        f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, float32 scores, "
        f"{POSITIVE_RATE:.0%} positives per column. Command: "
        "`python -m benchmarks.ap_loss --device cuda`.",
        "",
        f"ms per call, medians of interleaved repeats in this run, each repeat timing "
        f"{CUDA_CALLS} calls back to back (a training loop's throughput). ours: "
        "`validate_args=False`, the hot-path setting, which reads nothing on the host on the "
        "fused path; checked: the default `validate_args=True` (the value checks read the "
        "scores and targets on the host, so each call waits for the previous one). The search: "
        + (
            "the fused Triton inference (`negev.nn.functional._ap_triton`: keys, one sort, the "
            "search kernels (the nodes' candidates in chunks, their combination, one or two finer "
            "levels), one finishing kernel, and for the reduced loss one summing kernel)"
            if _ap_triton.disabled is None
            else f"the torch path (Triton off: {_ap_triton.disabled})"
        )
        + ". kernels = CUDA kernels and "
        "copies one call runs, ops = its `aten::` operators, kernel ms = their summed "
        "durations per call, what a call costs the device when the host runs ahead "
        "(torch.profiler). Context: one sort "
        "of the same scores, and binary cross-entropy (forward + backward) on them.",
        "",
        f"- 4,096 x 20: {by[(4096, 20)]['ours_ms']:.3f} ms (goal: <= 1 ms), 65,536 x 20: "
        f"{by[(65536, 20)]['ours_ms']:.3f} ms (goal: <= 3 ms)",
        f"- most kernels per call: {max(r['kernels'] for r in rows)} (goal: < 100)",
        "",
        "| N | C | ours ms | checked ms | kernels | ops | kernel ms | one sort ms | BCE ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']} | {r['C']} | **{r['ours_ms']:.3f}** | {r['checked_ms']:.3f} | "
            f"{r['kernels']} | {r['ops']} | {r['kernel_ms']:.3f} | {r['sort_ms']:.3f} | "
            f"{r['bce_ms']:.3f} |"
        )
    lines += ["", "Kernel time per call by kernel (ms, the five largest):", ""]
    for r in rows:
        largest = list(r["by_kernel"].items())[:5]
        lines.append(
            f"- {r['N']:,} x {r['C']}: "
            + "; ".join(f"`{_short(name)}` {sec * 1e3:.3f}" for name, sec in largest)
        )
    return lines


def _short(kernel: str) -> str:
    """A kernel's name without its template arguments or parameters."""
    name = kernel.removeprefix("void ").replace("(anonymous namespace)::", "")
    return name.split("<")[0].split("(")[0][-60:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per size (CUDA)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu":
        lines = cpu_table(run_cpu(), args.threads)
    else:
        lines = cuda_table(run_cuda(device, args.repeats), device)
    name = "ap_loss.md" if device.type == "cpu" else f"ap_loss_{device.type}.md"
    write_lines(args.out or RESULTS / name, lines)


if __name__ == "__main__":
    main()
