"""Every negative's best insertion for the AP-SVM loss, in a few batched passes (multilevel search).

Column by column (all columns at once), with the positives p_1 >= ... >= p_P, the negatives
n_1 >= ... >= n_Q, prefix sums S_i of the positives and harmonic numbers H, negative j goes below
the first ``i*_j = largest argmax_{0 <= i <= P} G_j(i)`` positives, where (u = j + i)

    G_j(i) = 2/Q (S_i - i n_j) - H(u) - (j-1)/u = 2/Q S_i - 2/Q n_j i - H(u) + (i+1)/u - 1

(see :mod:`negev.nn.functional.ap_svm`). i*_j does not decrease with j, so the i* of a few
negatives bound those of the negatives between them. With strides ``s_1 > s_2 > ... > s_L = 1``
(each a multiple of the next):

- level 1 evaluates G densely for the negatives j = s_1, 2 s_1, ...: a (P+1) x (Q / s_1) matrix;
- level l > 1 splits j into blocks between consecutive multiples of S = s_{l-1}: block b holds the
  S/s_l - 1 negatives j = bS + m s_l and their insertions lie in ``[i*_{bS}, i*_{(b+1)S}]``.
  Consecutive blocks share one end, so the ranges of one column hold ``P + #blocks`` candidates
  in all: candidate t of a column is ``i = t - b`` of block b, a (P + #blocks) x (S/s_l - 1)
  matrix per column, reduced per block by a segmented max.

Each level is a fixed number of tensor operations whatever the sizes (no loop over nodes), so a
call costs O(L) launches; L = 1 is the dense evaluation, larger L trades elements for launches:
:func:`choose_levels` picks it from the sizes and the device.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from negev.nn.functional import _ap_triton

# Cost model of one level (see choose_levels): its fixed cost, ~25 operators, expressed in
# evaluated candidates. On a CPU (torch 2.9, 1-2 threads, measured on the AP benchmark) an operator
# costs ~10-40 us with its dispatch and a candidate ~5-20 ns over its dozen passes; on a GPU a
# launch costs ~5 us and a candidate ~0.05 ns (a dozen passes of 16 bytes at ~3 TB/s).
_LEVEL_COST_IN_ELEMENTS = {"cpu": 100_000, "cuda": 2_000_000}
# Most candidates one level may evaluate (each holds ~6 float64 / int64 temporaries).
_MAX_LEVEL_ELEMENTS = 2**24


def strides_for(levels: int, q_max: int) -> list[int]:
    """Strides s_1 > ... > s_L = 1 with equal ratios r = ceil(Q^(1/L)): s_l = r^(L-l)."""
    ratio = max(2, math.ceil(q_max ** (1.0 / levels) - 1e-9))
    return [ratio ** (levels - 1 - level) for level in range(levels)]


def level_sizes(strides: list[int], p_max: int, q_max: int) -> list[int]:
    """Candidates per column evaluated by each level (the cost of the search)."""
    sizes = [(p_max + 1) * (q_max // strides[0])]
    for coarse, fine in zip(strides, strides[1:], strict=False):
        blocks = q_max // coarse + 1
        sizes.append((p_max + blocks) * (coarse // fine - 1))
    return sizes


@functools.lru_cache(maxsize=256)
def choose_levels(p_max: int, q_max: int, columns: int, device: torch.device) -> int:
    """Number of levels minimising ``elements + levels * level cost`` (within the memory cap)."""
    fixed = _LEVEL_COST_IN_ELEMENTS.get(device.type, _LEVEL_COST_IN_ELEMENTS["cuda"])
    most = max(1, math.ceil(math.log2(q_max + 1)))
    best, best_cost = most, math.inf
    for levels in range(1, most + 1):
        sizes = level_sizes(strides_for(levels, q_max), p_max, q_max)
        if max(sizes) * columns > _MAX_LEVEL_ELEMENTS and levels < most:
            continue
        cost = sum(sizes) * columns + levels * fixed
        if cost < best_cost:
            best, best_cost = levels, cost
    return best


@functools.lru_cache(maxsize=64)
def _arange(n: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device)


@functools.lru_cache(maxsize=64)
def rows(
    count: int, n: int, device: torch.device, dtype: torch.dtype = torch.int64, start: int = 0
) -> Tensor:
    """(count, n): start..start+n-1 on every row (contiguous, as searchsorted wants it)."""
    return torch.arange(start, start + n, dtype=dtype, device=device).expand(count, n).contiguous()


@functools.lru_cache(maxsize=64)
def _multiples(count: int, step: int, device: torch.device) -> Tensor:
    """(count,) int64: step, 2 step, ..., count * step."""
    return torch.arange(1, count + 1, device=device) * step


def count_at_most(values: Tensor, n: int, histogram: bool | None = None) -> Tensor:
    """(C, n) int64: ``[c, t]`` = how many of ``values[c]`` are <= t, for t = 0..n-1.

    Args:
        values: (C, K) int64 in [0, n], sorted along each row.
        histogram: count with a histogram and its running sum (default on a CPU, where it is
            several times faster) rather than ``searchsorted`` (one kernel, default elsewhere).
    """
    if not (values.device.type == "cpu" if histogram is None else histogram):
        return torch.searchsorted(values, rows(values.shape[0], n, values.device), right=True)
    ones = torch.ones((), dtype=values.dtype, device=values.device).expand(values.shape)
    counts = values.new_zeros(values.shape[0], n + 1).scatter_add_(1, values, ones)
    return counts.cumsum_(1)[:, :n]


@functools.lru_cache(maxsize=32)
def harmonic_numbers(n: int, device: torch.device) -> Tensor:
    """(n+1,) float64 harmonic numbers H(0..n), H(0) = 0."""
    steps = torch.arange(n + 1, dtype=torch.float64)
    return torch.cat([steps[:1], (1.0 / steps[1:]).cumsum(0)]).to(device)


def best_insertions(
    ordered: Tensor,
    two_over_q: Tensor,
    pos: Tensor,
    negatives: Tensor,
    p_max: int,
    q_max: int,
    strides: list[int] | None,
) -> Tensor:
    """Largest argmax i*_j of G_j over [0, P] for every negative j of every column.

    Args:
        ordered: (C, N) float64, each column's positives by decreasing score, then its negatives.
        two_over_q: (C, 1) float64 2/Q. pos, negatives: (C, 1) int64 P (at most ``p_max``), Q.
        p_max, q_max: the largest P and Q of the columns that matter (the others may get any
            insertions in [0, P]). strides: s_1 > ... > s_L = 1, each a multiple of the next,
            or None: the two Triton kernels of :mod:`negev.nn.functional._ap_triton`.

    Returns:
        (C, W) int64 ``best`` with W > q_max: ``best[c, j]`` is i*_j for 1 <= j <= Q_c, 0 at
        j = 0 and P_c past Q_c.
    """
    c, n = ordered.shape
    device = ordered.device
    scaled = ordered * two_over_q
    # 2/Q S_i for i = 0..p_max (S_i: sum of the i highest positives)
    prefix = torch.nn.functional.pad(scaled[:, :p_max].cumsum(1), (1, 0))
    if strides is None:
        harmonic = harmonic_numbers(n + 1, device)
        try:
            counts = n - negatives[:, 0]
            return _ap_triton.best_insertions(scaled, prefix, harmonic, counts, p_max, q_max)
        except Exception as error:  # a failed compilation: the torch search from now on
            _ap_triton.disable(error)
            strides = strides_for(choose_levels(p_max, q_max, c, device), q_max)
    width = max([q_max + 1] + [(q_max // s + 1) * s + 1 for s in strides[:-1]])
    # 2/Q n_j at [c, j], n_j = ordered[c, P_c + j - 1]; past the column's end: 0 (never used)
    slope = torch.nn.functional.pad(scaled, (1, width)).gather(1, pos + _arange(width, device))
    harmonic = harmonic_numbers(n + width, device)
    best = torch.nn.functional.pad(pos.expand(c, width - 1), (1, 0))

    # level 1, dense: nodes j = s_1, 2 s_1, ..., candidates i = P_c, P_c - 1, ..., 0 (then 0
    # again): argmax returns the first maximum, hence the largest maximiser.
    step = strides[0]
    count = q_max // step
    if count:
        i = (pos - _arange(p_max + 1, device)).clamp_(min=0)  # (C, P+1)
        j = _multiples(count, step, device)  # (J,)
        nodes = slice(step, count * step + 1, step)
        value = _evaluate(i, i, j, slope[:, nodes].unsqueeze(1), prefix, harmonic)
        found = i.gather(1, value.argmax(dim=1))  # (C, J)
        best[:, nodes] = torch.where(j > negatives, pos, found)
    for coarse, fine in zip(strides, strides[1:], strict=False):
        _refine(best, slope, prefix, harmonic, pos, negatives, q_max, coarse, fine)
    return best


def _evaluate(
    i: Tensor, base: Tensor, offsets: Tensor, slope: Tensor, prefix: Tensor, harmonic: Tensor
) -> Tensor:
    """``G_j(i) + 1`` on a (C, T, M) grid of candidates i (C, T) and nodes j = u - i.

    Args:
        i: (C, T) int64 insertions. base, offsets: u = j + i = base[..., None] + offsets,
            base (C, T), offsets (M,). slope: 2/Q n_j broadcastable to (C, T, M).
        prefix: (C, P+1) 2/Q S_i. harmonic: H(0..).
    """
    u = base.unsqueeze(2) + offsets
    i_f = i.unsqueeze(2).double()
    value = prefix.gather(1, i).unsqueeze(2) - harmonic.index_select(0, u.view(-1)).view(u.shape)
    value.addcdiv_(i_f + 1, u.double())
    return value.addcmul_(i_f, slope, value=-1)


def _refine(
    best: Tensor,
    slope: Tensor,
    prefix: Tensor,
    harmonic: Tensor,
    pos: Tensor,
    negatives: Tensor,
    q_max: int,
    coarse: int,
    fine: int,
) -> None:
    """One level > 1: fill ``best`` at the multiples of ``fine`` between multiples of ``coarse``."""
    c = best.shape[0]
    device = best.device
    blocks = q_max // coarse + 1
    ratio = coarse // fine
    span = blocks * coarse
    # candidate t of a column lies in block b(t) = #(b >= 1 with i*_{bS} + b <= t), at i = t - b
    starts = best[:, coarse:span:coarse] + _arange(blocks, device)[1:]  # (C, B-1)
    t = _arange(prefix.shape[1] - 1 + blocks, device)  # P_max + B candidates per column
    block = count_at_most(starts, t.shape[0])  # (C, T)
    i = torch.minimum(t - block, pos)  # past P_c: P_c again (a harmless duplicate)
    index = block.unsqueeze(2).expand(-1, -1, ratio - 1)
    node_slope = slope[:, :span].view(c, blocks, ratio, fine)[:, :, 1:, 0]  # (C, B, M)
    offsets = _multiples(ratio - 1, fine, device)  # (M,): j - bS
    base = torch.add(i, block, alpha=coarse)
    value = _evaluate(i, base, offsets, node_slope.gather(1, index), prefix, harmonic)
    # segmented argmax (the largest maximiser) of each (block, node) over its candidates
    top = value.new_full(index.shape[:1] + (blocks, ratio - 1), -math.inf)
    top.scatter_reduce_(1, index, value, "amax")
    hit = torch.where(value == top.gather(1, index), i.unsqueeze(2), -1)
    found = torch.full_like(top, -1, dtype=torch.long).scatter_reduce_(1, index, hit, "amax")
    j = _block_nodes(blocks, ratio, coarse, fine, device)  # (B, M)
    nodes = best[:, :span].view(c, blocks, ratio, fine)[:, :, 1:, 0]
    nodes.copy_(torch.where(j > negatives.unsqueeze(2), pos.unsqueeze(2), found))


@functools.lru_cache(maxsize=64)
def _block_nodes(blocks: int, ratio: int, coarse: int, fine: int, device: torch.device) -> Tensor:
    """(B, M) the nodes j = b * coarse + m * fine, m = 1..ratio-1."""
    return (torch.arange(blocks).unsqueeze(1) * coarse + torch.arange(1, ratio) * fine).to(device)
