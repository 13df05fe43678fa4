"""negev: negative evidence models for weakly supervised learning in PyTorch.

The core is an abstract *region encoder + evidence pooling* model: an encoder scores every region of
an input per class, and a pooling layer (max, average, max+min, WELDON, WILDCAT, log-sum-exp) turns
region scores into one class score. See :mod:`negev.nn` for the layers.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
