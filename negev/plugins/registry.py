"""Discovery of modality plugins through the ``negev.modalities`` entry-point group.

Every plugin, first-party or not, is found the same way. A broken plugin never breaks discovery:
it is reported with its distribution and the reason, and using it gives a clear error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import metadata

from negev.plugins.base import ModalityPlugin

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "PluginStatus", "discover_plugins", "get_plugin"]

ENTRY_POINT_GROUP = "negev.modalities"
_REQUIRED = ("load_data", "build_encoder", "collate", "read_input", "render_evidence")


class PluginError(Exception):
    """A plugin is unknown, broken or does not satisfy the contract."""


@dataclass
class PluginStatus:
    """One discovered entry point.

    Attributes:
        name: the modality name (the entry point's name).
        distribution: the installed distribution that declares it, and its version.
        plugin: the plugin instance, or None when it is broken.
        error: why it is broken (import error, contract violation, duplicate name), or None.
    """

    name: str
    distribution: str
    version: str
    plugin: ModalityPlugin | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def discover_plugins() -> dict[str, list[PluginStatus]]:
    """Load every entry point of the group; returns name -> statuses (several on a clash)."""
    found: dict[str, list[PluginStatus]] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        plugin, error = None, None
        try:
            plugin = _instantiate(entry.load(), entry.name)
        except Exception as exc:  # a broken plugin is reported, never raised here
            error = f"{type(exc).__name__}: {exc}"
        found.setdefault(entry.name, []).append(
            PluginStatus(entry.name, dist_name, version, plugin, error)
        )
    for name, statuses in found.items():
        if len(statuses) > 1:
            owners = ", ".join(s.distribution for s in statuses)
            for status in statuses:
                status.error = (
                    f"modality name {name!r} is registered by several distributions: {owners}"
                )
                status.plugin = None
    return found


def get_plugin(name: str) -> ModalityPlugin:
    """The plugin registered as ``name``; :class:`PluginError` if unknown or broken."""
    found = discover_plugins()
    if name not in found:
        known = ", ".join(sorted(n for n, s in found.items() if all(x.ok for x in s))) or "none"
        raise PluginError(f"unknown modality {name!r}; installed modalities: {known}")
    status = found[name][0]
    if not status.ok:
        raise PluginError(f"modality {name!r} ({status.distribution}) is broken: {status.error}")
    return status.plugin


def _instantiate(obj: object, name: str) -> ModalityPlugin:
    plugin = obj() if inspect.isclass(obj) else obj
    if not isinstance(plugin, ModalityPlugin):
        raise PluginError(f"entry point {name!r} is not a negev.plugins.ModalityPlugin: {obj!r}")
    missing = [m for m in _REQUIRED if getattr(type(plugin), m, None) is None]
    if missing or inspect.isabstract(type(plugin)):
        abstract = sorted(getattr(type(plugin), "__abstractmethods__", ())) or missing
        raise PluginError(f"plugin does not implement {', '.join(abstract)}")
    for attribute in ("name", "description"):
        if not isinstance(getattr(plugin, attribute, None), str):
            raise PluginError(f"plugin has no string attribute {attribute!r}")
    if plugin.name != name:
        raise PluginError(f"plugin calls itself {plugin.name!r} but is registered as {name!r}")
    return plugin
