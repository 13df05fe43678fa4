"""The training / evaluation engine shared by every modality.

- :mod:`negev.engine.config`: the run configuration (defaults, TOML, command line).
- :mod:`negev.engine.model`: region encoder + evidence head.
- :mod:`negev.engine.objectives`: losses by name (bce, ce, ap, mantra).
- :mod:`negev.engine.trainer`: the training loop, resuming, data parallelism.
- :mod:`negev.engine.checkpoint`: atomic safetensors checkpoints.
- :mod:`negev.engine.evaluation`: predictions and metrics.
"""

from negev.engine.config import LOSSES, RunConfig, load_toml
from negev.engine.evaluation import classification_metrics, predict
from negev.engine.trainer import DataError, TrainResult, load_model, resolve_config, train

__all__ = [
    "LOSSES",
    "DataError",
    "RunConfig",
    "TrainResult",
    "classification_metrics",
    "load_model",
    "load_toml",
    "predict",
    "resolve_config",
    "train",
]
