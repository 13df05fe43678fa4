"""WILDCAT pooling as one Triton kernel per pass: one program per (sample, class) row.

The forward program loads a row of N region scores, maps each to an int64 key that orders
(score, region) exactly (the float32 bits turned into integers of the same order, above the region
index), puts the masked-out and padding regions last (largest key), sorts the keys in registers
(for k <= 2, takes the extremes by reductions; for rows longer than 256, searches each end's
threshold bit by bit), and writes the output and the kept regions' indices. Only those indices
(B, C, min(kmax + kmin, N)) int32 are saved for the backward program, which writes the output
gradient times 1/kmax (alpha/kmin) into them.

Triton is optional (it ships with torch's CUDA wheels), and without it the callers keep the torch
path.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

# Longest row one program holds in registers (int64 keys); longer rows use the torch path.
MAX_REGIONS = 4096
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Below this k the extremes are found by 2k reductions, above it by one bitonic sort
# (log2(N)(log2(N)+1)/2 compare-exchange stages, ~ (log2(N)+1)/4 reductions' worth, >= 2).
ROUNDS_UP_TO = 2
# Longest block (N rounded up to a power of two) sorted in registers; longer rows take bitwise
# searches of both ends' thresholds (32 + log2(N) counting passes per end), whose registers do
# not spill. On an H200 (benchmarks/results/pooling_cuda.md, kernel time, fwd + bwd) the searches
# beat the in-register sort of 1,024 keys (8 x 20 x 28x28, k = 0.1: 0.028 against 0.035 ms) but
# not torch.sort of many rows (64 x 80 x 28x28: 0.33 against 0.24 ms), which choose_path keeps
# above 2^18 scores.
SORT_UP_TO = 256


# Why the kernels were turned off in this process (a failed compilation), or None.
disabled: str | None = None if triton is not None else "triton is not installed"


def disable(error: Exception) -> None:
    """Turn the kernels off for this process after ``error`` (warned once): the torch path
    serves every later call."""
    global disabled
    disabled = f"{type(error).__name__}: {error}"
    warnings.warn(
        f"wildcat_pool: the Triton kernels failed ({disabled}); using the torch path",
        RuntimeWarning,
        stacklevel=3,
    )


def supports(flat: Tensor) -> bool:
    """Whether :func:`pool` handles these (B, C, N) scores: CUDA, float32/16, bf16, N <= 4096."""
    return (
        disabled is None
        and flat.is_cuda
        and flat.dtype in DTYPES
        and flat.shape[2] <= MAX_REGIONS
        and flat.numel() < 2**31
    )


if triton is not None:

    @triton.jit(do_not_specialize=["n", "classes", "kmax", "kmin", "slots"])
    def _forward_kernel(
        x_ptr,
        mask_ptr,
        kmax_ptr,
        kmin_ptr,
        out_ptr,
        index_ptr,
        n,
        classes,
        kmax,
        kmin,
        alpha,
        slots,
        HAS_MASK: tl.constexpr,
        USE_LOW: tl.constexpr,
        ROUNDS: tl.constexpr,
        SELECT: tl.constexpr,
        INDEX_BITS: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0)
        sample = row // classes
        offs = tl.arange(0, BLOCK)
        inside = offs < n
        if HAS_MASK:
            valid = inside & (tl.load(mask_ptr + sample * n + offs, mask=inside, other=0) != 0)
            k_high = tl.load(kmax_ptr + sample)
            k_low = tl.load(kmin_ptr + sample)
        else:
            valid = inside
            k_high = kmax
            k_low = kmin
        if not USE_LOW:
            k_low = 0
        x = tl.load(x_ptr + row.to(tl.int64) * n + offs, mask=inside, other=0.0).to(tl.float32)
        bits = x.to(tl.int32, bitcast=True)
        ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # integers in the order of the floats
        key = (ordered.to(tl.int64) << 32) | offs.to(tl.int64)
        key = tl.where(valid, key, 0x7FFFFFFFFFFFFFFF)
        count = tl.sum(valid.to(tl.int32), axis=0)
        if ROUNDS > 0:
            # k <= ROUNDS: the extremes one by one (keys are distinct, so each round takes one)
            high_sum = tl.sum(tl.zeros([BLOCK], dtype=tl.float32), axis=0)
            low_sum = high_sum
            high_keys = tl.where(valid, key, -0x7FFFFFFFFFFFFFFF - 1)
            low_keys = key
            for r in tl.static_range(ROUNDS):
                top = tl.max(high_keys, axis=0)
                bottom = tl.min(low_keys, axis=0)
                take_high = r < k_high
                high_sum += tl.where(take_high, _value(top), 0.0)
                tl.store(
                    index_ptr + row * slots + r, (top & 0xFFFFFFFF).to(tl.int32), mask=take_high
                )
                if USE_LOW:
                    take_low = r < k_low
                    low_sum += tl.where(take_low, _value(bottom), 0.0)
                    tl.store(
                        index_ptr + row * slots + ROUNDS + r,
                        (bottom & 0xFFFFFFFF).to(tl.int32),
                        mask=take_low,
                    )
                high_keys = tl.where(high_keys == top, -0x7FFFFFFFFFFFFFFF - 1, high_keys)
                low_keys = tl.where(low_keys == bottom, 0x7FFFFFFFFFFFFFFF, low_keys)
        elif SELECT:
            # the ends by bitwise searches of their thresholds (no sort: long rows spill a sort
            # held in registers); the same regions as the sort, ties by region index
            u = ordered.to(tl.int64) + 2**31  # in [0, 2**32), in the order of the scores
            high = _largest(u, offs, valid, k_high, INDEX_BITS)
            low = high & False
            if USE_LOW:  # the smallest: the largest of the flipped order, ties by lower index
                low = _largest(2**32 - 1 - u, BLOCK - 1 - offs, valid, k_low, INDEX_BITS)
            high_sum = tl.sum(tl.where(high, x, 0.0), axis=0)
            low_sum = tl.sum(tl.where(low, x, 0.0), axis=0)
            # the slots of the sort's layout: low only, then in both ends, then high only
            both = high & low
            low_only = low & ~high
            high_only = high & ~low
            n_low_only = tl.sum(low_only.to(tl.int32), axis=0)
            n_both = tl.sum(both.to(tl.int32), axis=0)
            slot = tl.where(
                low_only,
                tl.cumsum(low_only.to(tl.int32), axis=0) - 1,
                tl.where(
                    both,
                    n_low_only + tl.cumsum(both.to(tl.int32), axis=0) - 1,
                    n_low_only + n_both + tl.cumsum(high_only.to(tl.int32), axis=0) - 1,
                ),
            )
            tl.store(index_ptr + row * slots + slot, offs, mask=high | low)
        else:
            # sorted ascending: valid keys at 0..count-1; the top k_high at the end, the bottom
            # k_low at the start; a region in both (k_high + k_low > count) is stored once
            key = tl.sort(key)
            value = _value(key)
            high = (offs >= count - k_high) & (offs < count)
            low = offs < k_low
            high_sum = tl.sum(tl.where(high, value, 0.0), axis=0)
            low_sum = tl.sum(tl.where(low, value, 0.0), axis=0)
            gap = tl.maximum(count - k_high - k_low, 0)
            slot = tl.where(low, offs, offs - gap)
            tl.store(
                index_ptr + row * slots + slot, (key & 0xFFFFFFFF).to(tl.int32), mask=high | low
            )
        out = high_sum / (k_high * 1.0)
        if USE_LOW:
            out += alpha * low_sum / (k_low * 1.0)
        tl.store(out_ptr + row, out.to(out_ptr.dtype.element_ty))

    @triton.jit
    def _kth_largest(u, eligible, k, BITS: tl.constexpr):
        """The k-th largest of the values u in [0, 2**BITS) where ``eligible`` (1 <= k <= their
        count): the largest t with at least k of them >= t, set bit by bit from the top."""
        t = tl.sum(tl.zeros_like(u), axis=0)
        for b in tl.static_range(BITS):
            candidate = t | (1 << (BITS - 1 - b))
            count = tl.sum((eligible & (u >= candidate)).to(tl.int32), axis=0)
            t = tl.where(count >= k, candidate, t)
        return t

    @triton.jit
    def _largest(u, rank, valid, k, INDEX_BITS: tl.constexpr):
        """Mask of the k largest valid values u in [0, 2**32), equal values by larger ``rank``
        (distinct, in [0, 2**INDEX_BITS)): exactly k regions."""
        t = _kth_largest(u, valid, k, 32)
        above = valid & (u > t)
        tie = valid & (u == t)
        rest = k - tl.sum(above.to(tl.int32), axis=0)  # >= 1 of the ties
        s = _kth_largest(rank.to(tl.int64), tie, rest, INDEX_BITS)
        return above | (tie & (rank >= s))

    @triton.jit
    def _value(key):
        """The float32 score of a key."""
        ordered = (key >> 32).to(tl.int32)
        return (ordered ^ ((ordered >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)

    @triton.jit(do_not_specialize=["n", "classes", "kmax", "kmin", "slots"])
    def _backward_kernel(
        grad_ptr,
        out_grad_ptr,
        index_ptr,
        valid_ptr,
        kmax_ptr,
        kmin_ptr,
        n,
        classes,
        kmax,
        kmin,
        alpha,
        slots,
        HAS_MASK: tl.constexpr,
        USE_LOW: tl.constexpr,
        ROUNDS: tl.constexpr,
        SLOTS: tl.constexpr,
    ):
        row = tl.program_id(0)
        sample = row // classes
        slot = tl.arange(0, SLOTS)
        if HAS_MASK:
            count = tl.load(valid_ptr + sample)
            k_high = tl.load(kmax_ptr + sample)
            k_low = tl.load(kmin_ptr + sample)
        else:
            count = n
            k_high = kmax
            k_low = kmin
        if not USE_LOW:
            k_low = 0
        g = tl.load(out_grad_ptr + row).to(tl.float32)
        w_high = g / (k_high * 1.0)
        w_low = g * 0.0
        if USE_LOW:
            w_low = alpha * g / (k_low * 1.0)
        if ROUNDS > 0:
            high = (slot < k_high) & (slot < ROUNDS)
            low = (slot >= ROUNDS) & (slot - ROUNDS < k_low)
            used = high | low
            weight = tl.where(slot < ROUNDS, w_high, w_low)
            index = tl.load(index_ptr + row * slots + slot, mask=used & (slot < slots), other=0)
            # with k <= 2 a region can be in both ends only when count <= 2: add, atomically
            tl.atomic_add(
                grad_ptr + row.to(tl.int64) * n + index,
                weight.to(grad_ptr.dtype.element_ty),
                mask=used & (slot < slots),
            )
        else:
            # slot -> sorted position (see the forward) -> its weights
            gap = tl.maximum(count - k_high - k_low, 0)
            position = tl.where(slot < k_low, slot, slot + gap)
            used = position < count
            used = used & ((slot < k_low) | (position >= count - k_high)) & (slot < slots)
            weight = tl.where(position >= count - k_high, w_high, 0.0)
            weight += tl.where(position < k_low, w_low, 0.0)
            index = tl.load(index_ptr + row * slots + slot, mask=used, other=0)
            tl.store(
                grad_ptr + row.to(tl.int64) * n + index,
                weight.to(grad_ptr.dtype.element_ty),
                mask=used,
            )


class _Pool(torch.autograd.Function):
    """Triton forward / backward of :func:`pool`."""

    @staticmethod
    def forward(ctx, flat, mask, k_high, k_low, kmax, kmin, alpha, use_low):
        batch, classes, n = flat.shape
        flat = flat.contiguous()
        rounds = max(kmax, kmin if use_low else 0)
        rounds = rounds if rounds <= ROUNDS_UP_TO else 0
        slots = 2 * rounds if rounds else min(kmax + (kmin if use_low else 0), n)
        out = flat.new_empty(batch, classes)
        index = torch.empty(batch, classes, slots, dtype=torch.int32, device=flat.device)
        has_mask = mask is not None
        dummy = index  # unused pointer arguments
        block = triton.next_power_of_2(n)
        _forward_kernel[(batch * classes,)](
            flat,
            mask.contiguous().view(torch.uint8) if has_mask else dummy,
            k_high if has_mask else dummy,
            k_low if has_mask else dummy,
            out,
            index,
            n,
            classes,
            kmax,
            kmin,
            float(alpha),
            slots,
            HAS_MASK=has_mask,
            USE_LOW=use_low,
            ROUNDS=rounds,
            SELECT=rounds == 0 and block > SORT_UP_TO,
            INDEX_BITS=max(1, (block - 1).bit_length()),
            BLOCK=block,
            num_warps=max(1, min(8, block // 256)),
        )
        valid = mask.sum(1) if has_mask else None
        ctx.save_for_backward(index, valid, k_high, k_low)
        ctx.config = (flat.shape, flat.dtype, kmax, kmin, float(alpha), use_low, rounds, slots)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        index, valid, k_high, k_low = ctx.saved_tensors
        shape, dtype, kmax, kmin, alpha, use_low, rounds, slots = ctx.config
        batch, classes, n = shape
        # atomics (the k <= 2 path) add in float32
        grad_in = torch.zeros(shape, dtype=torch.float32 if rounds else dtype, device=grad.device)
        has_mask = valid is not None
        dummy = index
        _backward_kernel[(batch * classes,)](
            grad_in,
            grad.contiguous(),
            index,
            valid if has_mask else dummy,
            k_high if has_mask else dummy,
            k_low if has_mask else dummy,
            n,
            classes,
            kmax,
            kmin,
            alpha,
            slots,
            HAS_MASK=has_mask,
            USE_LOW=use_low,
            ROUNDS=rounds,
            SLOTS=triton.next_power_of_2(max(slots, 1)),
        )
        return grad_in.to(dtype), None, None, None, None, None, None, None


def pool(
    flat: Tensor,
    mask: Tensor | None,
    k_high: Tensor | None,
    k_low: Tensor | None,
    kmax: int,
    kmin: int,
    alpha: float,
) -> Tensor:
    """``mean(top k_high) + alpha * mean(bottom k_low)`` of each (B, C, N) row, one program each.

    Args:
        flat: (B, C, N) float32 / float16 / bfloat16, N <= :data:`MAX_REGIONS`.
        mask: (B, N) bool or None (every region valid).
        k_high, k_low: (B,) int32 per-sample counts (1 <= k <= valid regions) with a mask, else
            None. kmax, kmin: the counts without a mask, their maxima with one; ``kmin = 0``
            drops the low term (as does ``alpha = 0``).
        alpha: weight of the low term.

    Returns:
        (B, C), dtype of ``flat``; NaN where a NaN score was kept (the caller raises).
    """
    use_low = kmin > 0 and alpha != 0
    return _Pool.apply(flat, mask, k_high, k_low, kmax, kmin if use_low else 0, alpha, use_low)
