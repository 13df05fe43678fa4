"""scikit-learn estimators on precomputed region features (bags).

:class:`MantraClassifier` (hinge losses) and :class:`MantraRanker` (structured AP loss), with
negative-evidence pooling of linear region scores.
"""

from negev.estimators.mantra import MantraClassifier, MantraRanker

__all__ = ["MantraClassifier", "MantraRanker"]
