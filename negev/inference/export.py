"""Export a trained run as one graph: the plugin's collated input tensors -> (scores, maps).

The evidence maps come out of the same forward pass as the scores (no backward pass, no hooks),
so the exported graph serves both. The poolings run with ``validate_args=False``: no host
synchronisation, no data-dependent branch, which is what lets them trace into one graph.

Formats:

- ``onnx``: ``torch.onnx.export(dynamo=True)`` at opset :data:`OPSET` (TopK with a tensor k);
  inputs named after the plugin's batch keys, outputs ``scores`` (B, C) and ``maps``
  (B, C, *regions); the batch dim is dynamic, and so is every other dim that the model lets vary
  (``torch.export.Dim.AUTO``: a text's length, a bag's instance count; an image's side stays as
  trained).
- ``exported``: the ``torch.export`` program, saved with :func:`torch.export.save` (``.pt2``),
  with the same dynamic dims.
- ``torchscript``: :func:`torch.jit.trace` (``.pt``), with the input tensors as positional
  arguments in the plugin's key order: shapes that change a k (a fraction of the regions) are
  those of the traced sample.

The float32 graph is exported whatever precision the run trained in (autocast is a training
choice; the weights are float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from negev.engine.data import BatchLoader, eval_plan
from negev.engine.model import EvidenceModel
from negev.inference.predictor import Predictor
from negev.plugins import Example

__all__ = ["FORMATS", "OPSET", "TensorGraph", "export", "no_validation", "sample_inputs"]

FORMATS = ("onnx", "torchscript", "exported")
#: ONNX opset: 18 has TopK with a dynamic k and ReduceMax / ReduceMin with axes as inputs.
OPSET = 18


class TensorGraph(nn.Module):
    """An :class:`EvidenceModel` returning a tuple: ``forward(inputs) -> (scores (B, C), maps
    (B, C, *regions))``, ``inputs`` the plugin's collated batch (a dict of tensors)."""

    def __init__(self, model: EvidenceModel):
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        out = self.model(inputs)
        return out.scores, out.maps


@contextlib.contextmanager
def no_validation(model: nn.Module) -> Iterator[None]:
    """Turn ``validate_args`` off in every submodule that has it, for the ``with`` block."""
    saved = [(m, m.validate_args) for m in model.modules() if hasattr(m, "validate_args")]
    try:
        for module, _ in saved:
            module.validate_args = False
        yield
    finally:
        for module, value in saved:
            module.validate_args = value


def sample_inputs(predictor: Predictor, examples: Sequence[Example]) -> dict[str, Tensor]:
    """The collated batch of ``examples`` as the engine builds it (``load_item`` then
    ``collate``), on the CPU: the inputs that the export traces."""
    loader = BatchLoader(
        predictor.plugin, {"sample": list(examples)}, len(predictor.classes), 0,
        torch.device("cpu"),
    )  # fmt: skip
    try:
        failed: list = []
        batches = list(loader.batches(eval_plan("sample", len(examples), len(examples)), failed))
    finally:
        loader.close()
    if failed:
        item = failed[0][1][0]
        raise ValueError(f"cannot export on sample item {item.name}: {item.reason}")
    inputs = batches[0]["inputs"]
    if not isinstance(inputs, dict) or not all(isinstance(v, Tensor) for v in inputs.values()):
        raise ValueError(
            f"the {predictor.plugin.name} plugin's batches are not a dict of tensors: its "
            "encoder takes Python objects, which a graph cannot (export its tensor part)"
        )
    return inputs


def _dynamic_dims(
    predictor: Predictor, examples: Sequence[Example], inputs: dict[str, Tensor]
) -> dict[str, dict[int, object]]:
    """``dynamic_shapes`` of the inputs: ``Dim.AUTO`` on the first dim (the batch, or the
    batch's atoms, instances, ...) and on every dim whose size differs between the items
    collated one by one (a text's length); the others stay as traced (an image's side)."""
    sizes = [
        {n: tuple(t.shape) for n, t in sample_inputs(predictor, [e]).items()} for e in examples
    ]
    dims = {}
    for name, tensor in inputs.items():
        varying = {d for d in range(1, tensor.dim()) if len({s[name][d] for s in sizes}) > 1}
        dims[name] = {d: torch.export.Dim.AUTO for d in sorted({0} | varying) if tensor.dim()}
    return dims


def export(
    predictor: Predictor,
    out: str | Path,
    fmt: str,
    examples: Sequence[Example],
) -> Path:
    """Export ``predictor``'s model (on the CPU, float32) traced on the batch of ``examples``
    (two or more items, of different sizes where the modality has them: a dim is exported as
    dynamic when it varies among the items).

    Returns:
        ``out``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if len(examples) < 2:
        raise ValueError("export needs two or more sample items (the batch dim must vary)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs = sample_inputs(predictor, examples)
    names = list(inputs)
    model = predictor.model.to("cpu").float().eval()
    graph = TensorGraph(model).eval()
    args = (inputs,)
    with torch.no_grad(), no_validation(model):
        if fmt == "torchscript":
            traced = torch.jit.trace(graph, args, check_trace=False, strict=False)
            traced.save(str(out))
            return out
        dynamic = {"inputs": _dynamic_dims(predictor, examples, inputs)}
        if fmt == "exported":
            program = torch.export.export(graph, (), {"inputs": inputs}, dynamic_shapes=dynamic)
            torch.export.save(program, out)
            return out
        program = torch.onnx.export(
            graph,
            (),
            kwargs={"inputs": inputs},
            dynamo=True,
            opset_version=OPSET,
            input_names=names,
            output_names=["scores", "maps"],
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
        program.save(str(out))
    return out
