"""Train a model of a modality through the engine and measure it, for the plugin benchmarks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from negev.engine import load_model, predict, resolve_config, train
from negev.engine.trainer import prepare_data


def train_and_measure(options: dict[str, Any], out: Path) -> dict[str, float]:
    """Train with ``options`` (engine options, ``modality`` included) into ``out``, then return
    the test metrics, the plugin's evidence metrics on the test split and the train seconds."""
    plugin, config = resolve_config({}, {**options, "out": str(out)})
    start = time.perf_counter()
    result = train(plugin, config, quiet=True)
    seconds = time.perf_counter() - start
    plugin, config, model, meta = load_model(out)
    splits = prepare_data(plugin, config, None)
    _, maps = predict(model, plugin, splits.test, 64, torch.device("cpu"), keep_maps=True)
    evidence = plugin.evidence_metrics(splits.test, maps, meta["classes"])
    return {**result.metrics, **evidence, "seconds": seconds}
