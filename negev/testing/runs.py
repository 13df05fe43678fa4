"""Runs without training, and an exported graph run by ONNX Runtime: for the tests of what uses
a trained run (predict, export), in core and in the plugins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from negev.engine.checkpoint import save_checkpoint
from negev.engine.config import RunConfig
from negev.engine.model import build_model
from negev.engine.trainer import refuse_ignored_options
from negev.plugins import Example
from negev.plugins.options import plugin_table
from negev.plugins.registry import get_plugin

__all__ = ["assert_onnx_matches", "onnx_outputs", "untrained_run"]


def untrained_run(
    run_dir: str | Path,
    modality: str,
    options: dict[str, Any] | None = None,
    init: Callable[[torch.nn.Module], None] | None = None,
) -> list[Example]:
    """Save the seeded, untrained model of ``modality`` as a run's checkpoint in ``run_dir``,
    the way training saves one (weights, config, classes, the plugin's fitted state).

    Args:
        options: run configuration over the plugin's defaults (``pooling``, ``kmax``, ``data``,
            ...); its ``plugin`` table is merged into the plugin's.
        init: called on the model before it is saved, e.g. to give a table that starts at
            zeros (a hashed embedding) values that make every region score differ.

    Returns:
        Every example of the run's data (train, val, test), as the plugin read them.
    """
    plugin = get_plugin(modality)
    defaults = plugin.default_config()
    options = dict(options or {})
    table = plugin_table(plugin, {**defaults.get("plugin", {}), **options.pop("plugin", {})})
    config = RunConfig.build(defaults, {**options, "modality": modality, "plugin": table})
    refuse_ignored_options(plugin, config)  # as training does
    data = plugin.load_data(config.data, config.to_dict())
    state = plugin.fit_state(data, config.to_dict())
    plugin.load_state(state)
    torch.manual_seed(config.seed)
    model = build_model(plugin, config, len(data.classes))
    if init is not None:
        init(model)
    meta = {
        "modality": modality,
        "classes": data.classes,
        "multilabel": data.multilabel,
        "config": config.to_dict(),
        "plugin_state": state,
    }
    save_checkpoint(Path(run_dir), 1, model, meta, {})
    return data.train + data.val + data.test


def onnx_outputs(path: str | Path, inputs: dict[str, Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, maps)`` of the ONNX graph at ``path`` on ``inputs`` (a collated batch), run
    by ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]
    scores, maps = session.run(["scores", "maps"], {n: inputs[n].numpy() for n in names})
    return scores, maps


def assert_onnx_matches(
    run: str | Path, trace: list[Example], check: list[Example], path: str | Path
) -> dict[str, Tensor]:
    """Export ``run`` to ONNX at ``path``, traced on the batch of ``trace``, and assert that ONNX
    Runtime's scores and maps on the batch of ``check`` (another batch size, other region counts
    where the modality has them) equal the PyTorch model's within 1e-4 relative (1e-6 absolute
    near 0). Returns the checked batch."""
    from negev.inference import load
    from negev.inference.export import export, sample_inputs

    predictor = load(run)
    export(predictor, path, "onnx", trace)
    inputs = sample_inputs(predictor, check)
    scores, maps = onnx_outputs(path, inputs)
    with torch.no_grad():
        expected = predictor.model(inputs)
    np.testing.assert_allclose(scores, expected.scores.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps, expected.maps.numpy(), rtol=1e-4, atol=1e-6)
    return inputs
