"""The instance encoder: an MLP over each instance's features, memory-bounded on huge bags.

On a bag of 200,000 instances, keeping every instance's activations for backward costs
``n * sum(hidden)`` floats per layer input and output. A hard-selection pooling (max, max+min,
WELDON, WILDCAT) sends gradients to k+ + k- instances only, so :func:`selective_recompute` runs
the MLP in chunks without a graph, lets the head pool the result, and in backward recomputes
the MLP, with gradients, on the instances whose output gradient is not zero: the same gradients
as the plain path (exact; the test checks it), activations for those instances only. A dense
pooling (mean, attention, LSE) gives every instance a gradient: the recomputation then runs over
all of them chunk by chunk (exact as well, activation memory still one chunk, a second forward
in time). The engine's model has the encoder apply the head's linear maps too
(:meth:`InstanceEncoder.forward_readout`), inside the same chunks: only their K outputs per
instance exist in full, not its D features nor their gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.plugins import RegionEncoder
from negev_bags.pooling import MeanWildcatPool

__all__ = ["Beside", "InstanceEncoder", "Standardize", "selective_recompute"]

#: Training starts the head's instance evidence z at this multiple of the bag-mean model's
#: instance scores (``meanwildcat``; :meth:`InstanceEncoder.begin_training`): at exactly 0 every
#: instance ties and the top-k / bottom-k selection is arbitrary; a small multiple ranks the
#: instances as the baseline does. The start kept as epoch 0 has z = 0: the baseline exactly.
EVIDENCE_START = 0.01


def _chunked(net: nn.Module, x: Tensor, chunk: int) -> Tensor:
    """``net(x)`` chunk by chunk without a graph, into one preallocated (N, D) output."""
    with torch.no_grad():
        first = net(x[:chunk])
        out = first.new_empty(x.shape[0], first.shape[1])
        out[:chunk] = first
        for start in range(chunk, x.shape[0], chunk):
            out[start : start + chunk] = net(x[start : start + chunk])
    return out


class _SelectiveRecompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, net: nn.Module, chunk: int, *params: Tensor) -> Tensor:
        ctx.net, ctx.chunk = net, chunk
        ctx.save_for_backward(x)
        return _chunked(net, x, chunk)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        params = [p for p in ctx.net.parameters() if p.requires_grad]
        totals = [torch.zeros_like(p) for p in params]
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        rows = grad.ne(0).any(1).nonzero().squeeze(1)
        for start in range(0, rows.numel(), ctx.chunk):
            index = rows[start : start + ctx.chunk]
            with torch.enable_grad():
                part = x[index].detach().requires_grad_(grad_x is not None)
                out = ctx.net(part)
                wrt = params + ([part] if grad_x is not None else [])
                grads = torch.autograd.grad(out, wrt, grad[index], allow_unused=True)
            for total, g in zip(totals, grads[: len(params)], strict=True):
                if g is not None:
                    total += g
            if grad_x is not None:
                grad_x[index] = grads[-1]
        everything = iter(totals)
        param_grads = [next(everything) if p.requires_grad else None for p in ctx.net.parameters()]
        return (grad_x, None, None, *param_grads)


def selective_recompute(net: nn.Module, x: Tensor, chunk: int = 16384) -> Tensor:
    """``net(x)`` row by row in chunks, without keeping activations: backward recomputes ``net``
    on the rows whose output gradient is non-zero (see the module doc).

    Args:
        net: a row-wise module (N, d) -> (N, D) with no randomness (no dropout) and no batch
            statistics (no batch norm), so that a recomputation equals the forward.
        x: (N, d) float. chunk: rows per forward / recomputation.

    Returns:
        (N, D), with the gradients of ``net(x)``.
    """
    return _SelectiveRecompute.apply(x, net, chunk, *net.parameters())


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature; mean and std (d,) are buffers (saved with the model)."""

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Beside(nn.Module):
    """``cat([x, body(x)], -1)``: (N, d) -> (N, d + D), the input kept beside the body's output
    (a linear reader of the result holds a linear reader of ``x`` as a special case)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], dim=-1)


class _Readout(nn.Module):
    """``cat([layer(net(x)) for layer in layers], -1)`` in float32 (N, d) -> (N, K): the head's
    linear maps of the instance features, as one row-wise module that chunks can recompute."""

    def __init__(self, net: nn.Module, layers: list[nn.Linear]):
        super().__init__()
        self.net, self.layers = net, nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        features = self.net(x)
        with torch.autocast(x.device.type, enabled=False):
            return torch.cat([layer(features.float()) for layer in self.layers], dim=-1)


class InstanceEncoder(RegionEncoder):
    """Instance MLP: optional standardisation (``mean``, ``std`` (d,) of the training instances),
    then ``hidden`` Linear + ReLU layers (none and no scaling: identity, the instance features are
    the region features; the head's 1x1 projection is then a linear instance scorer, and average
    pooling the linear model on bag means). ``skip``: the (standardised) features are kept beside
    the MLP's output, regions ``[x, MLP(x)]``, so that the linear scorer stays a special case.

    ``forward({"features": (B, N, d) float32 zero-padded, "mask": (B, N) bool}) ->
    (features (B, D, N), mask (B, N))`` with D = ``hidden[-1]`` (``d + hidden[-1]`` with
    ``skip``; d without hidden layers). More than ``chunk`` instances in a batch: computed in
    chunks with :func:`selective_recompute` when training, in chunks under no_grad otherwise.

    ``head_start``: a linear scorer on the raw features, weight (C, d) and bias (C,) (the
    bag-mean logistic regression, :mod:`negev_bags.warm_start`), that :meth:`init_head` writes
    into the head when the model is built; without hidden layers or with ``skip``.
    :meth:`begin_training` adds the instance evidence training starts from.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...] = (128,),
        chunk: int = 16384,
        mean: Tensor | None = None,
        std: Tensor | None = None,
        head_start: tuple[Tensor, Tensor] | None = None,
        skip: bool = False,
    ):
        super().__init__()
        if head_start is not None and hidden and not skip:
            raise ValueError(
                "head_start is a linear scorer on the features: only without hidden or with skip"
            )
        if in_features < 1 or any(h < 1 for h in hidden) or chunk < 1:
            raise ValueError(
                f"in_features, hidden sizes and chunk must be >= 1, got {in_features}, "
                f"{hidden}, {chunk}"
            )
        layers: list[nn.Module] = []
        if mean is not None and std is not None:
            layers.append(Standardize(mean, std))
        width = in_features
        mlp: list[nn.Module] = []
        for size in hidden:
            mlp += [nn.Linear(width, size), nn.ReLU()]
            width = size
        if skip and hidden:
            layers.append(Beside(nn.Sequential(*mlp)))
            width += in_features
        else:
            layers += mlp
        self.net = nn.Sequential(*layers)
        self.in_features, self.out_channels, self.chunk = in_features, width, chunk
        self.head_start = head_start
        self._evidence: Tensor | None = None  # what begin_training writes (init_head sets it)

    @torch.no_grad()
    def init_head(self, head: nn.Module) -> bool:
        """Write ``head_start`` into an :class:`~negev.nn.EvidenceHead` over this encoder (the
        engine calls it when it builds the model): the linear instance model ``<weight[c], x> +
        bias[c]`` on the raw features x (the standardisation folded in) goes into the pooling's
        linear module where it has one (``meanwildcat``: its bag-mean term, the instance
        evidence at 0, so that the model is the fit exactly), else into the head's projection
        (every map of class c; ``gap``). Nothing without ``head_start``. Returns whether a fit
        was written."""
        if self.head_start is None:
            return False
        weight, bias = (t.double() for t in self.head_start)
        scaling = self.net[0] if len(self.net) else None
        if isinstance(scaling, Standardize):
            # z = <w, x> + b = <w * std, (x - mean) / std> + <w, mean> + b
            bias = bias + weight @ scaling.mean.double()
            weight = weight * scaling.std.double()
        d, maps = weight.shape[1], head.class_wise.num_maps
        if isinstance(head.pool, MeanWildcatPool):
            # with skip, the features are [x, MLP(x)]: the fit reads the first d; the evidence
            # training starts from (begin_training) reads the fit's scores on them and the MLP
            # part at EVIDENCE_START times its default initialisation
            self._evidence = EVIDENCE_START * head.proj.weight.detach().clone()
            self._evidence[:, :d] = EVIDENCE_START * weight.repeat_interleave(maps, dim=0)
            rows = head.pool_classes // len(weight)  # M with pool_each_map, else 1
            head.attend.weight.zero_()
            head.attend.weight[:, :d] = weight.repeat_interleave(rows, dim=0)
            head.attend.bias.copy_(bias.repeat_interleave(rows))
            head.proj.weight.zero_()
            head.proj.bias.zero_()
            return True
        head.proj.weight.zero_()  # gap: exactly the baseline
        head.proj.weight[:, :d] = weight.repeat_interleave(maps, dim=0)
        head.proj.bias.copy_(bias.repeat_interleave(maps, dim=0))
        return True

    @torch.no_grad()
    def begin_training(self, head: nn.Module) -> None:
        """Set the instance evidence (``meanwildcat``) that training starts from, after the fit
        is kept as epoch 0 (the engine calls it): :data:`EVIDENCE_START` times the fit's instance
        scores (and times the default initialisation on the MLP part). Nothing under ``gap``."""
        if self._evidence is not None:
            head.proj.weight.copy_(self._evidence)

    def forward_readout(
        self, inputs: dict[str, Tensor], layers: list[nn.Linear]
    ) -> tuple[Tensor, Tensor]:
        """The head's linear maps (``layers``, :meth:`negev.nn.EvidenceHead.readout_layers`)
        of every instance's features, computed with them chunk by chunk (the engine calls it in
        place of :meth:`forward`): ``(readout (B, K, N) float32, mask (B, N))``. Only the K
        outputs of each instance exist in full, never its D features, nor their gradient: with a
        dense pooling (the bag-mean term) every instance is recomputed in backward, chunk by
        chunk (:func:`selective_recompute`, exact)."""
        return self._rows(inputs, _Readout(self.net, layers))

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self._rows(inputs, self.net)

    def _rows(self, inputs: dict[str, Tensor], net: nn.Module) -> tuple[Tensor, Tensor]:
        """``net`` over every instance (B, N, d) -> (B, D', N), chunked on huge bags."""
        x, mask = inputs["features"], inputs["mask"]
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"features must be (B, N, {self.in_features}), got {tuple(x.shape)}")
        batch, n = x.shape[:2]
        if net is self.net and len(net) == 0:  # the identity: the features are the regions
            return x.transpose(1, 2), mask
        flat = x.reshape(batch * n, -1)
        if batch * n <= self.chunk:
            out = net(flat)
        elif torch.is_grad_enabled() and any(p.requires_grad for p in net.parameters()):
            out = selective_recompute(net, flat, self.chunk)
        else:
            out = _chunked(net, flat, self.chunk)
        return out.reshape(batch, n, -1).transpose(1, 2), mask
