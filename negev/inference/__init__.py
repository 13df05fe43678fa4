"""Using a trained run: batch prediction of class scores and evidence maps, and export.

- :func:`load` / :class:`Predictor`: a run's model on new items (``negev.load``).
- :mod:`negev.inference.outputs`: the files ``negev predict`` writes.
- :mod:`negev.inference.export`: one graph from the collated inputs to ``(scores, maps)``
  (ONNX, TorchScript, ``torch.export``).
"""

from negev.inference.predictor import ItemPrediction, Prediction, Predictor, load

__all__ = ["ItemPrediction", "Prediction", "Predictor", "load"]
