"""Timing and memory helpers shared by the benchmarks.

Timings on shared machines are noisy: we interleave the candidates, repeat, and keep the median,
and report ratios measured in one run rather than absolute times.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    repeats: int = 15,
    warmup: int = 3,
    calls: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin.

    Each sample times ``calls`` back-to-back calls between two synchronisations and divides: on a
    GPU, ``calls > 1`` measures the throughput of a stream of calls, as in a training loop that
    does not wait for the device after each step, rather than one call's round trip.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sync(device)
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def saved_for_backward_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensor storages autograd keeps for the backward pass of ``fn()``."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def peak_cuda_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Extra CUDA memory at the peak of ``fn()`` (above what was allocated), or None on CPU."""
    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) - base


# Operators that only make views or metadata: counted only when they run another operator (a
# copy), as `to` and `contiguous` do when the layout or dtype changes.
_VIEWS = frozenset(
    "aten::" + name
    for name in (
        "alias as_strided chunk contiguous detach detach_ expand expand_as flatten lift_fresh "
        "narrow permute reshape resolve_conj resolve_neg select slice split squeeze t to "
        "transpose unbind unflatten unsqueeze view view_as _unsafe_view"
    ).split()
)


def _works(event) -> bool:
    """Whether a profiled operator does work: not a view, or a view that copies."""
    if not event.name.startswith("aten::"):
        return False
    return event.name not in _VIEWS or any(_works(c) for c in event.cpu_children)


def launches(fn: Callable[[], object], device: torch.device) -> tuple[int, int | None]:
    """Operators and CUDA kernels one call of ``fn()`` runs, counted by ``torch.profiler``.

    Returns:
        (aten ops, kernels): the outermost ``aten::`` operators (those not called by another
        one; pure views left out) and, on CUDA, the device kernels and copies (None elsewhere).
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    fn()
    sync(device)
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    events = prof.events()

    def outermost(event) -> bool:
        parent = event.cpu_parent
        return parent is None or not parent.name.startswith("aten::")

    ops = sum(1 for e in events if outermost(e) and _works(e))
    if device.type != "cuda":
        return ops, None
    return ops, sum(1 for e in events if e.device_type == DeviceType.CUDA)


def kernel_seconds(fn: Callable[[], object], device: torch.device, calls: int = 10) -> float:
    """Seconds of CUDA kernel time per call of ``fn()``: the summed durations of the kernels and
    copies ``calls`` calls run (torch.profiler), divided by ``calls``. What a call costs the
    device when the host runs ahead of it, as it does behind a model's heavier layers."""
    return sum(kernel_breakdown(fn, device, calls).values())


def kernel_breakdown(
    fn: Callable[[], object], device: torch.device, calls: int = 10
) -> dict[str, float]:
    """Seconds per call of ``fn()`` spent in each CUDA kernel (or copy), by name, largest first."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    fn()
    sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        sync(device)
    totals: dict[str, float] = {}
    for event in prof.events():
        if event.device_type == DeviceType.CUDA:
            seconds = event.time_range.elapsed_us() * 1e-6 / calls
            totals[event.name] = totals.get(event.name, 0.0) + seconds
    return dict(sorted(totals.items(), key=lambda item: -item[1]))
