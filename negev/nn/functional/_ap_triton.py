"""Every negative's best insertion for the AP-SVM loss in two Triton kernels (the GPU path).

The same search as :mod:`negev.nn.functional._ap_search` (read its docstring for G_j and the
bounds), with two levels and a stride S (a power of two) whatever the sizes, so a call is two
launches however large N is:

- the node kernel, one program per (column, tile of nodes j = S, 2S, ...), scans every candidate
  i = 0..P in tiles and keeps a running largest argmax of G_j(i) per node: (P+1) Q/S candidates;
- the block kernel, one program per (column, block b), finds the S-1 insertions between the nodes
  bS and (b+1)S by scanning only their range [i*_{bS}, i*_{(b+1)S}]: about (P + Q/S) S candidates.

G is evaluated in registers (float64, in the operation order of the torch path), never stored, so
the memory is that of ``best`` alone. Triton is optional (it ships with torch's CUDA wheels); the
callers keep the torch search without it, and on the CPU.
"""

from __future__ import annotations

import math
import os
import warnings

from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

# Nodes one program of the node kernel holds, and candidates per tile of both kernels.
_NODE_TILE = 64
_CANDIDATE_TILE = 32
# Stride bounds: S nodes of the block kernel live in one program's registers.
_MIN_STRIDE = 16
_MAX_STRIDE = 128

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
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    return disabled is None and (ordered.is_cuda or interpreted)


def stride_for(q_max: int) -> int:
    """S: the power of two nearest sqrt(Q) within [16, 128] (balances the two kernels' work)."""
    return int(min(_MAX_STRIDE, max(_MIN_STRIDE, 2 ** round(math.log2(max(q_max, 1)) / 2))))


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

    @triton.jit(do_not_specialize=["n", "prefix_width", "width", "stride", "nodes"])
    def _node_kernel(
        ordered_ptr,
        prefix_ptr,
        harmonic_ptr,
        two_over_q_ptr,
        pos_ptr,
        neg_ptr,
        best_ptr,
        n,
        prefix_width,
        width,
        stride,
        nodes,
        NODE_TILE: tl.constexpr,
        CANDIDATE_TILE: tl.constexpr,
    ):
        column = tl.program_id(0)
        m = tl.program_id(1) * NODE_TILE + tl.arange(0, NODE_TILE)
        j = (m + 1) * stride
        p = tl.load(pos_ptr + column)
        q = tl.load(neg_ptr + column)
        tq = tl.load(two_over_q_ptr + column)
        live = (m < nodes) & (j <= q)
        j = tl.where(live, j, 1)
        best_value = tl.full([NODE_TILE], float("-inf"), tl.float64)
        best_i = tl.zeros([NODE_TILE], tl.int64)
        slope = tl.load(ordered_ptr + column.to(tl.int64) * n + p + j - 1, mask=live, other=0.0)
        slope = slope * tq
        start = p * 0  # a while loop: bounds read from memory (Triton's interpreter wants it)
        while start <= p:
            i = start + tl.arange(0, CANDIDATE_TILE)
            ok = live[:, None] & (i <= p)[None, :]
            value = _insertion_values(
                prefix_ptr, harmonic_ptr, column * prefix_width, i, j, ok, p, slope
            )
            best_value, best_i = _keep_largest_argmax(value, i, best_value, best_i)
            start += CANDIDATE_TILE
        tl.store(best_ptr + column.to(tl.int64) * width + j, best_i, mask=live)

    @triton.jit(do_not_specialize=["n", "prefix_width", "width", "stride"])
    def _block_kernel(
        ordered_ptr,
        prefix_ptr,
        harmonic_ptr,
        two_over_q_ptr,
        pos_ptr,
        neg_ptr,
        best_ptr,
        n,
        prefix_width,
        width,
        stride,
        STRIDE: tl.constexpr,
        CANDIDATE_TILE: tl.constexpr,
    ):
        column = tl.program_id(0)
        block = tl.program_id(1)
        m = tl.arange(0, STRIDE)
        j = block * stride + m
        p = tl.load(pos_ptr + column)
        q = tl.load(neg_ptr + column)
        tq = tl.load(two_over_q_ptr + column)
        live = (m >= 1) & (j <= q)
        j = tl.where(live, j, 1)
        best_row = best_ptr + column * width
        low = tl.load(best_row + block * stride)
        high = tl.load(best_row + (block + 1) * stride)
        best_value = tl.full([STRIDE], float("-inf"), tl.float64)
        best_i = tl.zeros([STRIDE], tl.int64)
        slope = tl.load(ordered_ptr + column.to(tl.int64) * n + p + j - 1, mask=live, other=0.0)
        slope = slope * tq
        start = low
        while start <= high:
            i = start + tl.arange(0, CANDIDATE_TILE)
            ok = live[:, None] & (i <= high)[None, :]
            value = _insertion_values(
                prefix_ptr, harmonic_ptr, column * prefix_width, i, j, ok, p, slope
            )
            best_value, best_i = _keep_largest_argmax(value, i, best_value, best_i)
            start += CANDIDATE_TILE
        tl.store(best_row + j, best_i, mask=live)


def best_insertions(
    ordered: Tensor,
    two_over_q: Tensor,
    prefix: Tensor,
    harmonic: Tensor,
    pos: Tensor,
    negatives: Tensor,
    q_max: int,
) -> Tensor:
    """Largest argmax i*_j of G_j over [0, P] for every negative j of every column.

    Args:
        ordered: (C, N) float64, each column's positives by decreasing score, then its negatives.
        two_over_q: (C, 1) float64 2/Q. prefix: (C, P_max+1) float64 2/Q S_i.
        harmonic: (H,) float64 H(0..), H > N + 2 * :func:`stride_for` (q_max).
        pos, negatives: (C, 1) int64 P (at most P_max), Q. q_max: the largest Q that matters.

    Returns:
        (C, W) int64, W > q_max: i*_j at j for 1 <= j <= Q_c, 0 at j = 0, P_c past Q_c (as
        :func:`negev.nn.functional._ap_search.best_insertions`).
    """
    c, n = ordered.shape
    stride = stride_for(q_max)
    blocks = q_max // stride + 1
    width = blocks * stride + 1
    best = pos.expand(c, width).contiguous()
    best[:, 0] = 0
    common = (
        ordered.contiguous(),
        prefix.contiguous(),
        harmonic,
        two_over_q.contiguous(),
        pos.contiguous(),
        negatives.contiguous(),
        best,
        n,
        prefix.shape[1],
        width,
        stride,
    )
    nodes = q_max // stride
    if nodes:
        grid = (c, triton.cdiv(nodes, _NODE_TILE))
        _node_kernel[grid](
            *common, nodes, NODE_TILE=_NODE_TILE, CANDIDATE_TILE=_CANDIDATE_TILE, num_warps=4
        )
    _block_kernel[(c, blocks)](
        *common, STRIDE=stride, CANDIDATE_TILE=_CANDIDATE_TILE, num_warps=4 if stride <= 64 else 8
    )
    return best
