"""negev: negative evidence models for weakly supervised learning in PyTorch.

The core is an abstract *region encoder + evidence pooling* model: an encoder scores every region of
an input per class, and a pooling layer (max, average, max+min, WELDON, WILDCAT, log-sum-exp) turns
region scores into one class score. See :mod:`negev.nn` for the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from negev.inference import Predictor

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run: Any, *, device: str = "cpu", which: str = "best") -> Predictor:
    """A trained run as a :class:`~negev.inference.Predictor` (``predict(items) -> scores,
    maps``, ``explain(item, out_dir)``); see :func:`negev.inference.load`. The engine is imported
    on the first call only."""
    from negev.inference import load as load_run

    return load_run(run, device=device, which=which)
