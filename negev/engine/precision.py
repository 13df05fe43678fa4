"""Mixed precision: autocast of the encoder in bf16 or fp16, a gradient scaler for fp16.

The evidence head (projection, pooling) and the losses always run in float32
(:class:`~negev.engine.model.EvidenceModel` leaves autocast for the head): top-k selection and
ranking losses are sensitive to ties and rounding that half precision would create.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "grad_scaler"]

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` (``fp32``: none) on ``device`` (CPU included)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A loss scaler for fp16 (disabled, a pass-through, for fp32 and bf16)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
