"""Forward + backward speed and memory of ``wildcat_pool`` against the full-sort reference.

The reference is the approach of the original 2017 WILDCAT code: sort every region, average both
ends. Ours selects the ends with ``topk`` (a selection, no full sort) on the CPU, and on a GPU with
Triton runs one fused kernel per pass (``negev.nn.functional._wildcat_triton``), or one
``torch.sort`` for many long rows with k > 2; the path column names the one
``negev.nn.functional.wildcat.choose_path`` picked. ops / kernels:
the operators (``aten::``, views left out) and, on CUDA, the kernels one call runs, counted by
``torch.profiler``. On CUDA a second table times larger inputs against the memory-traffic floor
(reading the scores once and writing their gradient once at the bandwidth of a copy measured in
the same run).

Run:  python -m benchmarks.pooling [--device cpu|cuda] [--threads 2] [--repeats 15]
Writes benchmarks/results/pooling.md (or pooling_<device>.md for a non-CPU device).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import platform
from functools import partial
from pathlib import Path

import torch

from benchmarks._runs import RESULTS, write_lines
from benchmarks._timing import (
    kernel_seconds,
    launches,
    median_times,
    peak_cuda_bytes,
    saved_for_backward_bytes,
    sync,
)
from negev.nn.functional import _wildcat_triton, wildcat_pool
from negev.nn.functional.wildcat import choose_path
from negev.testing import sort_wildcat_pool

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

wildcat = importlib.import_module("negev.nn.functional.wildcat")

BATCHES = (8, 64)
CLASSES = (20, 80)
GRIDS = (7, 14, 28)
KS = (1, 0.1, 0.5)
ALPHA = 0.7
# (B, C, grid), k = LARGE_K: the GPU sizes of issue 20
LARGE = ((32, 80, 14), (64, 80, 28), (256, 80, 28), (64, 1000, 14))
LARGE_K = 0.2


# On a GPU: calls timed back to back per sample (the throughput of a training loop, which does
# not wait for the device after each step), and ours without the value checks (validate_args=False,
# the hot-path setting: no host read; the reference has none either).
CUDA_CALLS = 10


def ours_on(device: torch.device):
    """wildcat_pool as timed on ``device``."""
    return wildcat_pool if device.type == "cpu" else partial(wildcat_pool, validate_args=False)


def step(pool, scores: torch.Tensor, k: float | int) -> torch.Tensor:
    out = pool(scores, k, k, ALPHA)
    out.sum().backward()
    return out


def forced(path: str, scores: torch.Tensor, kmax: float, kmin: float, alpha: float) -> torch.Tensor:
    """wildcat_pool on a GPU through ``path`` ("triton" or "sort") whatever choose_path says, for
    kmin = kmax, a fraction of the regions."""
    assert kmin == kmax < 1
    flat = scores.flatten(2)
    count = max(1, round(kmax * flat.shape[2]))
    if path == "triton":
        return _wildcat_triton.pool(flat, None, None, None, count, count, alpha)
    return wildcat._TopBottomMean.apply(flat, count, count, float(alpha), True, False)


def path_of(scores: torch.Tensor, k: float | int) -> str:
    """The path wildcat_pool takes for these (B, C, *regions) scores with kmin = kmax = k."""
    flat = scores.flatten(2)
    rows, regions = flat.shape[0] * flat.shape[1], flat.shape[2]
    count = max(1, round(k * regions)) if k < 1 else min(int(k), regions)
    return choose_path(rows, regions, count, fused=_wildcat_triton.supports(flat))


def _kernel_ms(fn, device: torch.device) -> float:
    """ms of CUDA kernel time per call (NaN off CUDA)."""
    return kernel_seconds(fn, device) * 1e3 if device.type == "cuda" else float("nan")


def calls_on(device: torch.device) -> int:
    return 1 if device.type == "cpu" else CUDA_CALLS


def run(device: torch.device, repeats: int) -> list[dict]:
    rows = []
    for batch, classes, grid, k in itertools.product(BATCHES, CLASSES, GRIDS, KS):
        gen = torch.Generator().manual_seed(0)
        scores = torch.randn(batch, classes, grid, grid, generator=gen).to(device)
        scores.requires_grad_(True)
        ours = ours_on(device)
        fns = {
            "ours": partial(step, ours, scores, k),
            "reference": partial(step, sort_wildcat_pool, scores, k),
        }
        # the two must agree before they are timed
        torch.testing.assert_close(
            ours(scores, k, k, ALPHA), sort_wildcat_pool(scores, k, k, ALPHA)
        )
        times = median_times(fns, device, repeats=repeats, calls=calls_on(device))
        mem = {
            name: saved_for_backward_bytes(partial(p, scores, k, k, ALPHA))
            for name, p in (("ours", ours), ("reference", sort_wildcat_pool))
        }
        peak = {name: peak_cuda_bytes(fn, device) for name, fn in fns.items()}
        counts = {name: launches(fn, device) for name, fn in fns.items()}
        busy = {name: _kernel_ms(fn, device) for name, fn in fns.items()}
        regions = grid * grid
        k_regions = max(1, round(k * regions)) if k < 1 else k
        rows.append(
            {
                "B": batch,
                "C": classes,
                "regions": f"{grid}x{grid}",
                "k": k,
                "path": path_of(scores, k),
                "k_frac": k_regions / regions,
                "ours_ms": times["ours"] * 1e3,
                "ref_ms": times["reference"] * 1e3,
                "speedup": times["reference"] / times["ours"],
                "mem_ours": mem["ours"],
                "mem_ref": mem["reference"],
                "peak_ours": peak["ours"],
                "peak_ref": peak["reference"],
                "launch_ours": counts["ours"][1 if device.type == "cuda" else 0],
                "launch_ref": counts["reference"][1 if device.type == "cuda" else 0],
                "gpu_ours": busy["ours"],
                "gpu_ref": busy["reference"],
            }
        )
        print(
            f"B={batch:3d} C={classes:3d} {grid:2d}x{grid:<2d} k={k:<4} "
            f"speedup {rows[-1]['speedup']:.2f}x  saved-memory ratio "
            f"{mem['reference'] / mem['ours']:.1f}x",
            flush=True,
        )
    return rows


def run_large(device: torch.device, repeats: int) -> tuple[list[dict], float]:
    """The larger inputs at k = LARGE_K; also returns the copy bandwidth (bytes / s)."""
    buffer = torch.empty(2**28, dtype=torch.uint8, device=device)
    copy_s = median_times({"copy": buffer.clone}, device, repeats=repeats, calls=2)["copy"]
    bandwidth = 2 * buffer.numel() / copy_s  # read + write
    del buffer
    rows = []
    for batch, classes, grid in LARGE:
        gen = torch.Generator().manual_seed(0)
        scores = torch.randn(batch, classes, grid, grid, generator=gen).to(device)
        scores.requires_grad_(True)
        ours = ours_on(device)
        fns = {
            "ours": partial(step, ours, scores, LARGE_K),
            "reference": partial(step, sort_wildcat_pool, scores, LARGE_K),
        }
        expected = sort_wildcat_pool(scores, LARGE_K, LARGE_K, ALPHA)
        torch.testing.assert_close(ours(scores, LARGE_K, LARGE_K, ALPHA), expected)
        if _wildcat_triton.supports(scores.flatten(2)):  # each GPU path, whatever the choice
            for path in ("triton", "sort"):
                fns[path] = partial(step, partial(forced, path), scores, LARGE_K)
                torch.testing.assert_close(forced(path, scores, LARGE_K, LARGE_K, ALPHA), expected)
        times = median_times(fns, device, repeats=repeats, calls=calls_on(device))
        counts = {name: launches(fns[name], device) for name in ("ours", "reference")}
        busy = {name: _kernel_ms(fns[name], device) for name in ("ours", "reference")}
        floor = 2 * scores.numel() * scores.element_size() / bandwidth
        rows.append(
            {
                "size": f"{batch} x {classes} x {grid}x{grid}",
                "path": path_of(scores, LARGE_K),
                "ours_ms": times["ours"] * 1e3,
                "ref_ms": times["reference"] * 1e3,
                "floor_ms": floor * 1e3,
                "gpu_ours": busy["ours"],
                "gpu_ref": busy["reference"],
                "triton_ms": times.get("triton", float("nan")) * 1e3,
                "sort_ms": times.get("sort", float("nan")) * 1e3,
                "gpu_triton": _kernel_ms(fns["triton"], device) if "triton" in fns else math.nan,
                "gpu_sort": _kernel_ms(fns["sort"], device) if "sort" in fns else math.nan,
                "launch_ours": counts["ours"][1] if device.type == "cuda" else counts["ours"][0],
                "launch_ref": counts["reference"][1]
                if device.type == "cuda"
                else counts["reference"][0],
            }
        )
        print(
            f"{rows[-1]['size']}: ours {rows[-1]['ours_ms']:.3f} ms, full sort "
            f"{rows[-1]['ref_ms']:.3f} ms, floor {rows[-1]['floor_ms']:.4f} ms",
            flush=True,
        )
        del scores
    return rows, bandwidth


# Where the host time of one call goes, at the smallest cell (B, C, grid) with k = 1
HOST_CELL = (8, 20, 7)


def run_host_costs(device: torch.device, repeats: int) -> dict[str, float]:
    """ms per call, back to back, of the pieces of a small call: the harness alone (sum and
    backward of the scores), one empty Triton launch and one small ATen kernel from Python, ours
    forward only (no autograd), ours, the other paths forced, and the full-sort reference."""
    batch, classes, grid = HOST_CELL
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(batch, classes, grid, grid, generator=gen).to(device).requires_grad_()
    flat = scores.detach().flatten(2)
    ours = ours_on(device)

    def harness() -> None:
        scores.sum().backward()

    def forward_only() -> None:
        with torch.no_grad():
            ours(scores, 1, 1, ALPHA)

    def select(s: torch.Tensor, kmax: int, kmin: int, alpha: float) -> torch.Tensor:
        return wildcat._TopBottomMean.apply(s.flatten(2), kmax, kmin, float(alpha), False, False)

    fns = {
        "harness: sum + backward": harness,
        "one ATen kernel (fill)": partial(flat.new_empty(1).fill_, 0.0),
        "ours, forward only": forward_only,
        "ours": partial(step, ours, scores, 1),
        "topk / max / min path forced": partial(step, select, scores, 1),
        "full-sort reference": partial(step, sort_wildcat_pool, scores, 1),
    }
    if _wildcat_triton.supports(flat):
        fns["one empty Triton launch"] = partial(_empty_launch, flat)
        fns["triton path forced"] = partial(
            step,
            lambda s, kmax, kmin, alpha: _wildcat_triton.pool(
                s.flatten(2), None, None, None, kmax, kmin, alpha
            ),
            scores,
            1,
        )
    times = median_times(fns, device, repeats=repeats, calls=CUDA_CALLS)
    return {name: seconds * 1e3 for name, seconds in times.items()}


def _empty_launch(flat: torch.Tensor) -> None:
    """One launch of a Triton kernel that does nothing: the launcher's own host cost."""
    _noop_kernel[(1,)](flat, flat.shape[2])


if triton is not None:

    @triton.jit
    def _noop_kernel(pointer, n):
        """Nothing: the cost of a launch."""
        if n < 0:
            tl.store(pointer, 0.0)


def to_markdown(
    rows: list[dict],
    large: list[dict],
    bandwidth: float,
    device: torch.device,
    threads: int,
    host: dict[str, float] | None = None,
) -> list[str]:
    small = [r for r in rows if r["k_frac"] <= 0.05]
    cuda = device.type == "cuda"
    what = "kernels" if cuda else "ops"
    if cuda:
        if _wildcat_triton.supports(torch.zeros(1, 1, 1, device=device)):
            path = f"Triton {_wildcat_triton.triton.__version__} kernels or torch.sort by size"
        else:
            path = f"the torch path ({_wildcat_triton.disabled})"
        where = f"{torch.cuda.get_device_name(device)}, ours: {path}"
    else:
        where = f"{platform.processor() or platform.machine()}, {threads} threads"
    lines = [
        "# wildcat_pool vs full-sort reference: forward + backward",
        "",
        f"Device: {device} ({where}), torch {torch.__version__}; alpha={ALPHA}, kmin=kmax=k. "
        f"Command: `python -m benchmarks.pooling{' --device cuda' if cuda else ''}"
        f"{f' --threads {threads}' if not cuda and threads != 2 else ''}`.",
        "",
        "speedup = reference time / our time, both measured in this run (median of interleaved "
        "repeats"
        + (
            f"; each repeat times {CUDA_CALLS} calls back to back, as a training loop runs them, "
            "and ours runs with `validate_args=False`, the hot-path setting without host reads"
            if cuda
            else ""
        )
        + "). memory = bytes autograd keeps for backward (distinct storages)"
        + ("; peak = extra CUDA memory at peak" if cuda else "")
        + f". {what} = "
        + (
            "CUDA kernels and copies one call runs"
            if cuda
            else "operators one call runs (outermost `aten::` operators, views left out)"
        )
        + ", counted by torch.profiler.",
        "",
        f"- slowest cell: {min(r['speedup'] for r in rows):.2f}x (goal: never slower, >= 1)",
        f"- cells with k <= 5% of the regions: min {min(r['speedup'] for r in small):.2f}x "
        f"(goal: >= 2x)",
    ]
    if cuda:
        by_kernels = [r["gpu_ref"] / r["gpu_ours"] for r in rows]
        small_kernels = [r["gpu_ref"] / r["gpu_ours"] for r in small]
        lines += [
            "- by GPU kernel time (kernel ms: the summed durations of the kernels one call runs, "
            "what it costs the device when the host runs ahead, as behind a backbone): slowest "
            f"cell {min(by_kernels):.2f}x, k <= 5% min {min(small_kernels):.2f}x",
        ]
    lines += [
        "",
        f"| B | C | regions | k | path | speedup | ours ms | reference ms | {what} ours "
        f"| {what} reference | memory ours | memory reference |"
        + (
            " peak ours | peak reference | kernel ms ours | kernel ms reference | speedup, "
            "kernel time |"
            if cuda
            else ""
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
        + ("---|---|---|---|---|" if cuda else ""),
    ]
    for r in rows:
        line = (
            f"| {r['B']} | {r['C']} | {r['regions']} | {r['k']} | {r['path']} | "
            f"**{r['speedup']:.2f}x** | "
            f"{r['ours_ms']:.3f} | {r['ref_ms']:.3f} | {r['launch_ours']} | {r['launch_ref']} | "
            f"{_size(r['mem_ours'])} | {_size(r['mem_ref'])} |"
        )
        if cuda:
            line += (
                f" {_size(r['peak_ours'])} | {_size(r['peak_ref'])} | {r['gpu_ours']:.4f} | "
                f"{r['gpu_ref']:.4f} | **{r['gpu_ref'] / r['gpu_ours']:.2f}x** |"
            )
        lines.append(line)
    if large:
        lines += [
            "",
            f"## Larger inputs, k = {LARGE_K}, alpha = {ALPHA}",
            "",
            f"Memory-traffic floor: read the scores once and write their gradient once at "
            f"{bandwidth / 1e9:.0f} GB/s (a copy measured in this run).",
            "",
            "triton ms / sort ms (and their kernel ms): each GPU path forced, whatever "
            "`choose_path` picks.",
            "",
            f"| B x C x regions | path | ours ms | full sort ms | speedup | floor ms "
            f"| ours / floor | kernel ms ours | kernel ms full sort | kernel ms ours / floor "
            f"| triton ms | sort ms | kernel ms triton | kernel ms sort "
            f"| {what} ours | {what} full sort |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in large:
            lines.append(
                f"| {r['size']} | {r['path']} | {r['ours_ms']:.3f} | {r['ref_ms']:.3f} | "
                f"**{r['ref_ms'] / r['ours_ms']:.2f}x** | {r['floor_ms']:.4f} | "
                f"{r['ours_ms'] / r['floor_ms']:.1f}x | {r['gpu_ours']:.4f} | {r['gpu_ref']:.4f} | "
                f"{r['gpu_ours'] / r['floor_ms']:.1f}x | "
                f"{r['triton_ms']:.3f} | {r['sort_ms']:.3f} | "
                f"{r['gpu_triton']:.4f} | {r['gpu_sort']:.4f} | "
                f"{r['launch_ours']} | {r['launch_ref']} |"
            )
    if host:
        batch, classes, grid = HOST_CELL
        lines += [
            "",
            f"## Where the host time of a small call goes ({batch} x {classes} x {grid}x{grid}, "
            f"k = 1)",
            "",
            f"ms per call, {CUDA_CALLS} calls back to back, medians of interleaved repeats in this "
            "run. Forward + backward unless named.",
            "",
            "| what | ms per call |",
            "|---|---|",
            *(f"| {name} | {ms:.3f} |" for name, ms in host.items()),
        ]
    return lines


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
    large, bandwidth = run_large(device, args.repeats) if device.type == "cuda" else ([], 0.0)
    host = run_host_costs(device, args.repeats) if device.type == "cuda" else None
    sync(device)
    name = "pooling.md" if device.type == "cpu" else f"pooling_{device.type}.md"
    out = args.out or RESULTS / name
    write_lines(out, to_markdown(rows, large, bandwidth, device, args.threads, host))


if __name__ == "__main__":
    main()
