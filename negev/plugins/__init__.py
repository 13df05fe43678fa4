"""The modality plugin interface (:mod:`negev.plugins.base`) and its discovery
(:mod:`negev.plugins.registry`)."""

from negev.plugins.base import BadItem, DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.registry import (
    ENTRY_POINT_GROUP,
    PluginError,
    PluginStatus,
    discover_plugins,
    get_plugin,
    plugin_version,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BadItem",
    "DataSplits",
    "Example",
    "ModalityPlugin",
    "PluginError",
    "PluginStatus",
    "RegionEncoder",
    "discover_plugins",
    "get_plugin",
    "plugin_version",
]
