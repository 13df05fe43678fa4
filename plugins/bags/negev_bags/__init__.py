"""negev modality plugin for multiple-instance learning: bags of pre-extracted instance features
(whole-slide tile features, classic MIL tables), instance-level evidence, memory-bounded huge
bags."""

from negev_bags.plugin import BagsPlugin

__all__ = ["BagsPlugin"]
