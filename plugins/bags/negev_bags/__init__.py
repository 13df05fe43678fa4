"""negev modality plugin for multiple-instance learning: bags of pre-extracted instance features
(whole-slide tile features, classic MIL tables), instance-level evidence, memory-bounded huge
bags."""

from negev_bags.plugin import BagsPlugin
from negev_bags.pooling import MeanWildcatPool, mean_wildcat_pool  # registers meanwildcat

__all__ = ["BagsPlugin", "MeanWildcatPool", "mean_wildcat_pool"]
