"""The training / evaluation engine shared by every modality.

- :mod:`negev.engine.config`: the run configuration (defaults, TOML, command line).
- :mod:`negev.engine.model`: region encoder + evidence head.
- :mod:`negev.engine.objectives`: the registered losses over the global batch.
- :mod:`negev.engine.recipe`: parameter groups, optimizer, warm-up + cosine schedule.
- :mod:`negev.engine.precision`: mixed precision (autocast, gradient scaler).
- :mod:`negev.engine.data`: the input pipeline (Dataset over examples, DataLoader workers).
- :mod:`negev.engine.trainer`: the training loop, model selection, resuming, data parallelism.
- :mod:`negev.engine.checkpoint`: atomic safetensors checkpoints, ``best`` and ``latest``, the
  last ``keep`` kept and the newest readable one used; atomic run files.
- :mod:`negev.engine.lock`: one writer per run directory.
- :mod:`negev.engine.evaluation`: predictions and metrics.
- :mod:`negev.engine.scoring` / :mod:`negev.engine.explanation`: :func:`evaluate` and
  :func:`explain` on a trained run, what the CLI and the benchmarks call.
"""

from negev.engine.config import PRECISIONS, RunConfig, load_toml
from negev.engine.evaluation import classification_metrics, predict
from negev.engine.explanation import Explanation, explain
from negev.engine.scoring import Evaluation, evaluate
from negev.engine.trainer import (
    TrainResult,
    load_model,
    monitor_name,
    prepare_data,
    resolve_config,
    train,
)
from negev.errors import DataError
from negev.nn import LOSSES

__all__ = [
    "LOSSES",
    "PRECISIONS",
    "DataError",
    "Evaluation",
    "Explanation",
    "RunConfig",
    "TrainResult",
    "classification_metrics",
    "evaluate",
    "explain",
    "load_model",
    "load_toml",
    "monitor_name",
    "predict",
    "prepare_data",
    "resolve_config",
    "train",
]
