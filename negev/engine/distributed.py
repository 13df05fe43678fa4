"""Data parallel training with ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["World", "gather_with_grad", "init_world"]


@dataclass
class World:
    """This process's place: rank, number of processes (1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device: torch.device) -> World:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


class _GatherRows(torch.autograd.Function):
    """All ranks' (n_r, ...) tensors concatenated; the backward sums the gradients of every rank
    (all-reduce) and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:
        sizes = [
            torch.zeros(1, dtype=torch.long, device=local.device)
            for _ in range(dist.get_world_size())
        ]
        dist.all_gather(sizes, torch.tensor([local.shape[0]], device=local.device))
        counts = [int(s) for s in sizes]
        padded = local.new_zeros(max(counts), *local.shape[1:])
        padded[: local.shape[0]] = local
        parts = [torch.zeros_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        ctx.counts, ctx.rank = counts, dist.get_rank()
        return torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = sum(ctx.counts[: ctx.rank])
        return grad[start : start + ctx.counts[ctx.rank]]


def gather_with_grad(local: Tensor, world: World) -> Tensor:
    """Rows of every rank, in rank order, differentiable (the identity on one process)."""
    return local if world.size == 1 else _GatherRows.apply(local)
