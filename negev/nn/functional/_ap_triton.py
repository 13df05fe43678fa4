"""Every negative's best insertion for the AP-SVM loss in a few Triton kernels (the GPU path).

The same multilevel search as :mod:`negev.nn.functional._ap_search` (read its docstring for G_j
and the bounds), with two or three levels (:func:`strides_for`), so a call is at most four
launches however large N is:

- the node kernel, one program per (column, tile of nodes j = 0, S_1, 2 S_1, ..., chunk of 256
  candidates), keeps a running largest argmax of G_j(i) per node over its chunk of i = 0..P, and
  a combining kernel takes the largest argmax over the chunks: (P+1) Q / S_1 candidates in all
  (the nodes are few and their candidates many: the chunks fill the device);
- a block kernel per finer level, one program per (column, block b), finds the insertions at
  j = b S_{l-1} + m S_l by scanning only their range [i*_{b S_{l-1}}, i*_{(b+1) S_{l-1}}]: about
  (P + Q / S_{l-1}) S_{l-1} / S_l candidates.

G is evaluated in registers (float64, in the operation order of the torch path), never stored, so
the memory is that of ``best`` and the chunks' maxima. Triton is optional (it ships with torch's
CUDA wheels); the callers keep the torch search without it, and on the CPU.
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import Tensor

from negev.nn.functional import _ap_search

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

# Nodes one program of the node kernel holds, candidates it scans (in tiles of _CANDIDATE_TILE,
# as the block kernel does): the nodes are few (Q / S_1), their candidates many (P + 1), so the
# candidates are split over programs to fill the device.
_NODE_TILE = 64
_NODE_CHUNK = 256
_CANDIDATE_TILE = 32
# Stride bounds: S nodes of the block kernel live in one program's registers.
_MIN_STRIDE = 16
_MAX_STRIDE = 128

# Triton's interpreter runs the kernels on CPU tensors; it is chosen before Triton is imported.
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

# Why the kernels were turned off in this process (a failed compilation), or None.
disabled: str | None = None if triton is not None else "triton is not installed"


def disable(error: Exception) -> None:
    """Turn the kernels off for this process after ``error`` (warned once)."""
    global disabled
    disabled = f"{type(error).__name__}: {error}"
    warnings.warn(
        f"ap_svm_loss: the Triton search failed ({disabled}); using the torch search",
        RuntimeWarning,
        stacklevel=3,
    )


def supports(ordered: Tensor) -> bool:
    """Whether :func:`best_insertions` serves these (C, N) scores: CUDA (or Triton's interpreter,
    ``TRITON_INTERPRET=1``, on any device), with Triton working."""
    return disabled is None and (ordered.is_cuda or _INTERPRETED)


if triton is not None:

    @triton.jit
    def _insertion_values(prefix_ptr, harmonic_ptr, prefix_row, i, j, ok, p, slope):
        """G_j(i) + 1 on a (nodes, candidates) tile (slope: 2/Q n_j), -inf where not ``ok``."""
        prefix = tl.load(prefix_ptr + prefix_row + i, mask=i <= p, other=0.0)
        u = j[:, None] + i[None, :]
        harmonic = tl.load(harmonic_ptr + u, mask=ok, other=0.0)
        i_f = i.to(tl.float64)[None, :]
        value = prefix[None, :] - harmonic
        value = value + (i_f + 1.0) / u.to(tl.float64)
        value = value - i_f * slope[:, None]
        return tl.where(ok, value, float("-inf"))

    @triton.jit
    def _keep_largest_argmax(value, i, best_value, best_i):
        """Fold a tile (later tiles hold larger i) into the running largest argmax per node."""
        tile_max = tl.max(value, axis=1)
        tile_arg = tl.max(tl.where(value == tile_max[:, None], i[None, :], -1), axis=1)
        better = tile_max >= best_value
        return tl.where(better, tile_max, best_value), tl.where(better, tile_arg, best_i)

    @triton.jit
    def _scan(
        scaled_ptr,
        prefix_ptr,
        harmonic_ptr,
        column,
        n,
        prefix_width,
        p,
        j,
        live,
        low,
        high,
        NODES: tl.constexpr,
        CANDIDATE_TILE: tl.constexpr,
    ):
        """The largest argmax of G_j over i in [low, high] for each node j (where ``live``)."""
        jj = tl.where(live, j, 1)
        slope = tl.load(scaled_ptr + column.to(tl.int64) * n + p + jj - 1, mask=live, other=0.0)
        best_value = tl.full([NODES], float("-inf"), tl.float64)
        best_i = tl.zeros([NODES], tl.int64)
        start = low  # a while loop: bounds read from memory (Triton's interpreter wants it)
        while start <= high:
            i = start + tl.arange(0, CANDIDATE_TILE)
            ok = live[:, None] & (i <= high)[None, :]
            value = _insertion_values(
                prefix_ptr, harmonic_ptr, column * prefix_width, i, jj, ok, p, slope
            )
            best_value, best_i = _keep_largest_argmax(value, i, best_value, best_i)
            start += CANDIDATE_TILE
        return best_value, best_i

    @triton.jit
    def _node_tile(counts_ptr, n, stride, blocks, p_max, NODE_TILE: tl.constexpr):
        """What the node programs share: this program's column, its tile of node indices m
        (nodes j = m * stride), the column's P (at most ``p_max``), whether m is a node
        (m <= blocks) and whether its j is live (1 <= j <= Q)."""
        column = tl.program_id(0)
        m = tl.program_id(1) * NODE_TILE + tl.arange(0, NODE_TILE)
        j = m * stride
        count = tl.load(counts_ptr + column)
        inside = m <= blocks
        live = inside & (j >= 1) & (j <= n - count)
        return column, m, j, tl.minimum(count, p_max), inside, live

    @triton.jit(do_not_specialize=["n", "prefix_width", "stride", "blocks", "p_max", "node_width"])
    def _node_kernel(
        scaled_ptr,
        prefix_ptr,
        harmonic_ptr,
        counts_ptr,
        part_value_ptr,
        part_index_ptr,
        n,
        prefix_width,
        stride,
        blocks,
        p_max,
        node_width,
        CHUNK: tl.constexpr,
        NODE_TILE: tl.constexpr,
        CANDIDATE_TILE: tl.constexpr,
    ):
        """Per (column, tile of nodes j = 0, S, ..., blocks * S, chunk of CHUNK candidates): the
        largest argmax of G_j over the chunk's candidates i <= P and its value (-inf: none)."""
        column, m, j, p, _, live = _node_tile(counts_ptr, n, stride, blocks, p_max, NODE_TILE)
        split = tl.program_id(2)
        low = split * CHUNK
        # no scan where no node is live (past Q: the grid is sized by the largest Q, or a bound)
        anything = tl.max(live.to(tl.int32), axis=0) > 0
        high = tl.where(anything, tl.minimum(low + CHUNK - 1, p), -1)
        value, index = _scan(
            scaled_ptr,
            prefix_ptr,
            harmonic_ptr,
            column,
            n,
            prefix_width,
            p,
            j,
            live,
            low,
            high,
            NODE_TILE,
            CANDIDATE_TILE,
        )
        at = (column * tl.num_programs(2) + split).to(tl.int64) * node_width + m
        tl.store(part_value_ptr + at, value)
        tl.store(part_index_ptr + at, index)

    @triton.jit(
        do_not_specialize=["n", "width", "stride", "blocks", "p_max", "splits", "node_width"]
    )
    def _node_combine_kernel(
        part_value_ptr,
        part_index_ptr,
        counts_ptr,
        best_ptr,
        n,
        width,
        stride,
        blocks,
        p_max,
        splits,
        node_width,
        NODE_TILE: tl.constexpr,
    ):
        """best[c, j] at the nodes j = 0, S, ..., blocks * S from the chunks' maxima (later chunks
        hold larger i, so ``>=`` keeps the largest argmax): 0 at j = 0, P past Q."""
        column, m, j, p, inside, live = _node_tile(counts_ptr, n, stride, blocks, p_max, NODE_TILE)
        best_value = tl.full([NODE_TILE], float("-inf"), tl.float64)
        best_i = tl.zeros([NODE_TILE], tl.int64)
        split = column * 0
        while split < splits:  # a while loop, as in _scan (Triton's interpreter wants it)
            at = (column * splits + split).to(tl.int64) * node_width + m
            value = tl.load(part_value_ptr + at)
            better = value >= best_value
            best_value = tl.where(better, value, best_value)
            best_i = tl.where(better, tl.load(part_index_ptr + at), best_i)
            split += 1
        found = tl.where(live, best_i, tl.where(j == 0, 0, p))
        tl.store(best_ptr + column.to(tl.int64) * width + j, found, mask=inside)

    @triton.jit(
        do_not_specialize=["n", "prefix_width", "width", "stride", "coarse", "fine", "p_max"]
    )
    def _block_kernel(
        scaled_ptr,
        prefix_ptr,
        harmonic_ptr,
        counts_ptr,
        best_ptr,
        n,
        prefix_width,
        width,
        stride,
        coarse,
        fine,
        p_max,
        RATIO: tl.constexpr,
        CANDIDATE_TILE: tl.constexpr,
    ):
        """best[c, j] at j = b coarse + m fine (m = 1..RATIO-1, RATIO = coarse / fine), within
        [best[b coarse], best[(b+1) coarse]]; P past Q."""
        column = tl.program_id(0)
        block = tl.program_id(1)
        m = tl.arange(0, RATIO)
        j = block * coarse + m * fine
        count = tl.load(counts_ptr + column)
        p = tl.minimum(count, p_max)
        q = n - count
        inside = m >= 1
        live = inside & (j <= q)
        best_row = best_ptr + column * width
        low = tl.load(best_row + block * coarse)
        high = tl.load(best_row + (block + 1) * coarse)
        high = tl.where(tl.max(live.to(tl.int32), axis=0) > 0, high, low - 1)  # nothing live
        _, found = _scan(
            scaled_ptr,
            prefix_ptr,
            harmonic_ptr,
            column,
            n,
            prefix_width,
            p,
            j,
            live,
            low,
            high,
            RATIO,
            CANDIDATE_TILE,
        )
        tl.store(best_row + j, tl.where(live, found, p), mask=inside)


def strides_for(q_max: int) -> list[int]:
    """Strides S_1 > ... > S_L = 1, powers of two with ratios r <= 128 between them: two levels
    (r ~ sqrt(Q)) up to Q = 4096, three (r ~ Q^(1/3)) above, so the node kernel's (P+1) Q / S_1
    and each block kernel's ~(P + Q / S_l) r candidates stay small."""
    levels = 2 if q_max <= 4096 else 3
    exponent = round(math.log2(max(q_max, 1)) / levels)
    ratio = int(min(_MAX_STRIDE, max(_MIN_STRIDE, 2**exponent)))
    return [ratio ** (levels - 1 - level) for level in range(levels)]


def best_insertions(
    scaled: Tensor, prefix: Tensor, harmonic: Tensor, counts: Tensor, p_max: int, q_max: int
) -> Tensor:
    """Largest argmax i*_j of G_j over [0, P] for every negative j of every column.

    Args:
        scaled: (C, N) float64, 2/Q times each column's positives by decreasing score, then its
            negatives. prefix: (C, P_max+1) float64 2/Q S_i. harmonic: (H,) float64 H(0..), H > N.
        counts: (C,) int64 positives per column; P = min(count, p_max), Q = N - count.
        p_max, q_max: the largest P and Q of the columns that matter (the others may get any
            insertions in [0, P]).

    Returns:
        (C, W) int64, W > q_max: i*_j at j for 1 <= j <= Q_c, 0 at j = 0, P_c past Q_c (as
        :func:`negev.nn.functional._ap_search.best_insertions`).
    """
    c, n = scaled.shape
    strides = strides_for(q_max)
    top = strides[0]
    blocks = q_max // top + 1
    width = blocks * top + 1
    best = torch.empty(c, width, dtype=torch.int64, device=scaled.device)
    # the nodes' scan over all P + 1 candidates, split in chunks over programs, then combined
    node_tiles = triton.cdiv(blocks + 1, _NODE_TILE)
    splits = triton.cdiv(p_max + 1, _NODE_CHUNK)
    node_width = node_tiles * _NODE_TILE
    part_value = torch.empty(c, splits, node_width, dtype=torch.float64, device=scaled.device)
    part_index = torch.empty(c, splits, node_width, dtype=torch.int64, device=scaled.device)
    _node_kernel[(c, node_tiles, splits)](
        scaled,
        prefix,
        harmonic,
        counts,
        part_value,
        part_index,
        n,
        prefix.shape[1],
        top,
        blocks,
        p_max,
        node_width,
        CHUNK=_NODE_CHUNK,
        NODE_TILE=_NODE_TILE,
        CANDIDATE_TILE=_CANDIDATE_TILE,
        num_warps=4,
    )
    _node_combine_kernel[(c, node_tiles)](
        part_value,
        part_index,
        counts,
        best,
        n,
        width,
        top,
        blocks,
        p_max,
        splits,
        node_width,
        NODE_TILE=_NODE_TILE,
    )
    common = (scaled, prefix, harmonic, counts, best, n, prefix.shape[1], width, top)
    for coarse, fine in zip(strides, strides[1:], strict=False):
        ratio = coarse // fine
        _block_kernel[(c, (width - 1) // coarse)](
            *common,
            coarse,
            fine,
            p_max,
            RATIO=ratio,
            CANDIDATE_TILE=_CANDIDATE_TILE,
            num_warps=4 if ratio <= 64 else 8,
        )
    return best


# --- the whole inference on a GPU: keys, one sort, the search, then one finishing kernel ---------

# Rows a column may hold in the fused inference: the row index takes the low 30 bits of a key.
MAX_ROWS = 2**30
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_SLOT_TILE = 1024


def supports_fused(scores: Tensor) -> bool:
    """Whether :func:`inference` serves these (N, C) scores: float32 / float16 / bfloat16 (whose
    values a 32-bit key orders exactly), N < 2**30, where :func:`supports` holds."""
    return supports(scores) and scores.dtype in FUSED_DTYPES and scores.shape[0] < MAX_ROWS


if triton is not None:

    @triton.jit(do_not_specialize=["n", "columns"])
    def _key_kernel(scores_ptr, targets_ptr, key_ptr, n, columns, SLOT_TILE: tl.constexpr):
        """key[c, r] = (negative << 62) | (descending score bits << 30) | r, int64 >= 0: one
        ascending sort of a column's keys puts its positives first, each group by decreasing score,
        equal scores by row (as a stable sort)."""
        column = tl.program_id(0)
        rows = tl.program_id(1) * SLOT_TILE + tl.arange(0, SLOT_TILE)
        inside = rows < n
        at = rows.to(tl.int64) * columns + column
        x = tl.load(scores_ptr + at, mask=inside, other=0.0).to(tl.float32) + 0.0  # -0.0 -> 0.0
        bits = x.to(tl.int32, bitcast=True)
        ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # int32 in the order of the floats
        descending = 0x7FFFFFFF - ordered.to(tl.int64)  # in [0, 2**32)
        negative = (tl.load(targets_ptr + at, mask=inside, other=0) == 0).to(tl.int64)
        key = (negative << 62) | (descending << 30) | rows.to(tl.int64)
        tl.store(key_ptr + column.to(tl.int64) * n + rows, key, mask=inside)

    @triton.jit
    def _key_value(key):
        """The float32 score of a key, as float64."""
        ordered = (0x7FFFFFFF - ((key >> 30) & 0xFFFFFFFF)).to(tl.int32)
        bits = ordered ^ ((ordered >> 31) & 0x7FFFFFFF)
        return bits.to(tl.float32, bitcast=True).to(tl.float64)

    @triton.jit(do_not_specialize=["n"])
    def _scale_kernel(key_ptr, counts_ptr, scaled_ptr, n, SLOT_TILE: tl.constexpr):
        """scaled[c, s] = 2/Q * the score of slot s (2/max(Q, 1) where Q = 0)."""
        column = tl.program_id(0)
        slots = tl.program_id(1) * SLOT_TILE + tl.arange(0, SLOT_TILE)
        inside = slots < n
        q = n - tl.load(counts_ptr + column)
        two_over_q = 2.0 / tl.maximum(q, 1).to(tl.float64)
        key = tl.load(key_ptr + column.to(tl.int64) * n + slots, mask=inside, other=0)
        tl.store(scaled_ptr + column.to(tl.int64) * n + slots, _key_value(key) * two_over_q, inside)

    @triton.jit(do_not_specialize=["n", "columns", "tiles", "p_max", "width"])
    def _finish_kernel(
        key_ptr,
        counts_ptr,
        best_ptr,
        part_ptr,
        grad_ptr,
        n,
        columns,
        tiles,
        p_max,
        width,
        SLOT_TILE: tl.constexpr,
        SEARCH_STEPS: tl.constexpr,
    ):
        """Per (column, tile of slots): the gradient Psi(y~) - Psi(y*) scattered to the rows, and
        the tile's part of the loss 1 - AP(y~) + <Psi(y~) - Psi(y*), s> (tile 0 adds the 1, or NaN
        for a column without positive or negative, whose gradient is 0)."""
        column = tl.program_id(0)
        tile = tl.program_id(1)
        count = tl.load(counts_ptr + column)
        usable = (count > 0) & (count < n)
        p = tl.minimum(count, p_max)
        q = n - count
        pq = (p * q).to(tl.float64)
        scale = tl.where(usable, 2.0 / tl.maximum(pq, 1.0), 0.0)
        inv_p = tl.where(usable, 1.0 / tl.maximum(p, 1).to(tl.float64), 0.0)
        best_row = best_ptr + column.to(tl.int64) * width
        slots = tile * SLOT_TILE + tl.arange(0, SLOT_TILE)
        inside = slots < n
        key = tl.load(key_ptr + column.to(tl.int64) * n + slots, mask=inside, other=0)
        positive = inside & (slots < p)
        # a_k, the negatives placed above positive k = slot + 1: how many of best[1..Q]
        # (non-decreasing) are <= slot, by bisection
        low = tl.full([SLOT_TILE], 1, tl.int64)
        high = tl.zeros([SLOT_TILE], tl.int64) + q + 1
        for _ in tl.static_range(SEARCH_STEPS):
            open_ = positive & (low < high)
            middle = (low + high) // 2
            value = tl.load(best_row + middle, mask=open_, other=0)
            right = open_ & (value <= slots)
            low = tl.where(right, middle + 1, low)
            high = tl.where(open_ & ~right, middle, high)
        above = (low - 1).to(tl.float64)
        # negative j = slot - P + 1 goes below best[j] positives
        j = tl.where(positive | ~inside, 1, slots - p + 1)
        below = (p - tl.load(best_row + j, mask=inside & ~positive, other=0)).to(tl.float64)
        grad = tl.where(inside, tl.where(positive, -above, below) * scale, 0.0)
        score_part = tl.sum(tl.where(inside, grad * _key_value(key), 0.0), axis=0)
        rank = (slots + 1).to(tl.float64)
        precision_part = tl.sum(tl.where(positive, rank / (rank + above), 0.0), axis=0)
        offset = tl.where(tile == 0, tl.where(usable, 1.0, float("nan")), 0.0)
        tl.store(part_ptr + column * tiles + tile, score_part - precision_part * inv_p + offset)
        row = key & 0x3FFFFFFF  # the low 30 bits (MAX_ROWS)
        tl.store(grad_ptr + row * columns + column, grad, mask=inside)


def count_bound(n: int) -> int:
    """The most positives, and the most negatives, a usable column of ``n`` scores has: the
    ``p_max`` and ``q_max`` of a call sized for any counts (counts kept on the device)."""
    return max(n - 1, 1)


def inference(
    scores: Tensor, targets: Tensor, counts: list[int] | Tensor, p_max: int, q_max: int
) -> tuple[Tensor, Tensor]:
    """Loss-augmented inference of the AP-SVM loss in a few launches (the GPU path).

    Args:
        scores: (N, C) float32 / float16 / bfloat16 (see :func:`supports_fused`). targets: (N, C)
            bool. counts: the positives of each column, on the host or (C,) int64 on the device
            (then nothing is read on the host). p_max, q_max: at least the largest P and Q of the
            columns that have both (N - 1 bounds both; the kernels skip what lies past a column's
            own P and Q, so a loose bound costs little).

    Returns:
        As :func:`negev.nn.functional.ap_svm.ap_svm_inference`: loss (C,) float64 (NaN where a
        column lacks a positive or a negative), gradient (N, C) float64.
    """
    parts, grad = inference_parts(scores, targets, counts, p_max, q_max, torch.float64)
    return parts.sum(1), grad  # (C,): a fixed order, deterministic


def inference_parts(
    scores: Tensor,
    targets: Tensor,
    counts: list[int] | Tensor,
    p_max: int,
    q_max: int,
    grad_dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    """:func:`inference` with each column's loss in parts, one per tile of slots: (C, tiles)
    float64 (their sum is the loss), and the gradient in ``grad_dtype`` (N, C)."""
    n, c = scores.shape
    device = scores.device
    if isinstance(counts, Tensor):
        counts_t = counts.to(device, torch.int64)
    else:
        counts_t = torch.tensor(counts, dtype=torch.int64).to(device, non_blocking=True)
    tiles = (c, triton.cdiv(n, _SLOT_TILE))
    key = torch.empty(c, n, dtype=torch.int64, device=device)
    _key_kernel[tiles](scores.contiguous(), targets.contiguous(), key, n, c, SLOT_TILE=_SLOT_TILE)
    key = key.sort(dim=1).values  # distinct keys: no stable sort needed
    scaled = torch.empty(c, n, dtype=torch.float64, device=device)
    _scale_kernel[tiles](key, counts_t, scaled, n, SLOT_TILE=_SLOT_TILE)
    prefix = torch.nn.functional.pad(scaled[:, :p_max].cumsum(1), (1, 0))  # 2/Q S_i, i = 0..P
    harmonic = _ap_search.harmonic_numbers(n + 1, device)
    best = best_insertions(scaled, prefix, harmonic, counts_t, p_max, q_max)
    parts = torch.empty(tiles, dtype=torch.float64, device=device)
    grad = torch.empty(n, c, dtype=grad_dtype, device=device)
    _finish_kernel[tiles](
        key,
        counts_t,
        best,
        parts,
        grad,
        n,
        c,
        tiles[1],
        p_max,
        best.shape[1],
        SLOT_TILE=_SLOT_TILE,
        SEARCH_STEPS=best.shape[1].bit_length() + 1,
        num_warps=8,
    )
    return parts, grad


def total(parts: Tensor, counts: Tensor, n: int, mean: bool, dtype: torch.dtype) -> Tensor:
    """The reduced loss and its weight from :func:`inference_parts` in one launch (what would be
    a sum, a mask of the usable columns, its count, a division and casts: a handful of launches
    from the host): ``weight * sum`` of the usable columns' losses (0 < P < N), weight 1 / their
    number (``mean``; 1 with none) or 1.

    Returns:
        (2,) ``dtype``: the loss, then the weight (the backward's scale of the gradient).
    """
    columns, tiles = parts.shape
    out = torch.empty(2, dtype=dtype, device=parts.device)
    block = min(1024, triton.next_power_of_2(columns))
    _total_kernel[(1,)](parts, counts, out, n, columns, tiles, MEAN=mean, BLOCK=block)
    return out


if triton is not None:

    @triton.jit(do_not_specialize=["n", "columns", "tiles"])
    def _total_kernel(parts_ptr, counts_ptr, out_ptr, n, columns, tiles, MEAN: tl.constexpr,
                      BLOCK: tl.constexpr):  # fmt: skip
        """out = [weight * the usable columns' summed parts, weight] (one program)."""
        loss = tl.sum(tl.zeros([BLOCK], tl.float64), axis=0)
        usable = tl.sum(tl.zeros([BLOCK], tl.int32), axis=0)
        start = columns * 0
        while start < columns:  # while loops: bounds from arguments (Triton's interpreter)
            column = start + tl.arange(0, BLOCK)
            inside = column < columns
            count = tl.load(counts_ptr + column, mask=inside, other=0)
            ok = inside & (count > 0) & (count < n)
            column_loss = tl.zeros([BLOCK], tl.float64)
            tile = columns * 0
            while tile < tiles:
                column_loss += tl.load(parts_ptr + column * tiles + tile, mask=ok, other=0.0)
                tile += 1
            loss += tl.sum(column_loss, axis=0)
            usable += tl.sum(ok.to(tl.int32), axis=0)
            start += BLOCK
        weight = 1.0 / tl.maximum(usable, 1).to(tl.float64) if MEAN else 1.0
        tl.store(out_ptr, loss * weight)
        tl.store(out_ptr + 1, weight)
