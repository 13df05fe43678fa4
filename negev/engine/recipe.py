"""The optimisation recipe: parameter groups, optimizer and learning-rate schedule of a run."""

from __future__ import annotations

import math

import torch
from torch import nn

from negev.engine.config import RunConfig
from negev.engine.model import EvidenceModel

__all__ = ["build_optimizer", "build_scheduler", "parameter_groups"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: EvidenceModel, config: RunConfig) -> list[dict]:
    """The encoder's parameters at ``lr * backbone_lr_mult`` and the head's at ``lr``; with
    ``decay_norms_biases=False``, normalisation weights and every bias (1-D parameters of
    norms, ``*.bias``) without weight decay. Empty groups are left out."""
    groups = []
    for part, scale in ((model.encoder, config.backbone_lr_mult), (model.head, 1.0)):
        decay, plain = [], []
        for module in part.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if not parameter.requires_grad:
                    continue
                exempt = isinstance(module, _NORMS) or name == "bias"
                (plain if exempt and not config.decay_norms_biases else decay).append(parameter)
        for params, weight_decay in ((decay, config.weight_decay), (plain, 0.0)):
            if params:
                groups.append(
                    {"params": params, "lr": config.lr * scale, "weight_decay": weight_decay}
                )
    return groups


def build_optimizer(model: EvidenceModel, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum 0.9, over :func:`parameter_groups`.

    AdamW takes torch's fused kernel where the parameters' device has one (CPU, CUDA, MPS, ...):
    the same update as the default per-tensor loop, up to float rounding, in one pass over the
    parameters. On 2 CPU threads its step is 5-7x faster (``benchmarks/results/optimizer_step.md``),
    which matters most for the text plugin's 2^20-row n-gram embedding, whose every row AdamW
    updates at every step. Elsewhere (a device or dtype without the kernel) the default loop."""
    groups = parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
    try:
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except RuntimeError:  # no fused kernel for these parameters' device or dtype
        return torch.optim.AdamW(groups, lr=config.lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: RunConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimizer step: the factor of epoch e is the cosine
    ``(1 + cos(pi e / epochs)) / 2``, times a linear warm-up ``min(1, (s + 1) / W)`` over the
    first ``W = warmup_epochs * steps_per_epoch`` steps s."""
    steps_per_epoch = max(1, steps_per_epoch)
    warmup = config.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        epoch = min(step // steps_per_epoch, config.epochs)
        cosine = 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        return cosine * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
