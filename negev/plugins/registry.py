"""Discovery of modality plugins through the ``negev.modalities`` entry-point group.

Every plugin, first-party or not, is found the same way. :func:`get_plugin` imports only the
entry point it is asked for (a plugin with heavy or broken dependencies costs nothing to the
others); :func:`discover_plugins` imports them all and reports each broken one with its
distribution and the reason. The installed entry points are read once per ``sys.path``.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from negev.errors import PluginError
from negev.plugins.base import ModalityPlugin

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginStatus",
    "discover_plugins",
    "get_plugin",
    "plugin_version",
]

ENTRY_POINT_GROUP = "negev.modalities"


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
    return {
        name: [_load(entry, entries) for entry in entries] for name, entries in _entries().items()
    }


def get_plugin(name: str) -> ModalityPlugin:
    """The plugin registered as ``name``, importing only its entry point; :class:`PluginError`
    if unknown or broken."""
    entries = _entries()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise PluginError(f"unknown modality {name!r}; installed modalities: {known}")
    status = _load(entries[name][0], entries[name])
    if not status.ok:
        raise PluginError(f"modality {name!r} ({status.distribution}) is broken: {status.error}")
    return status.plugin


def plugin_version(name: str) -> str:
    """The version of the distribution that registers modality ``name`` (``"unknown"``)."""
    entries = _entries().get(name, ())
    dist = entries[0].dist if len(entries) == 1 else None
    return dist.version if dist is not None else "unknown"


def _entries() -> dict[str, tuple[metadata.EntryPoint, ...]]:
    return _scan(tuple(sys.path))


@lru_cache(maxsize=4)
def _scan(path: tuple[str, ...]) -> dict[str, tuple[metadata.EntryPoint, ...]]:
    """name -> its entry points (several on a clash), read from the distributions on ``path``."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, []).append(entry)
    return {name: tuple(entries) for name, entries in found.items()}


def _distribution(entry: metadata.EntryPoint) -> tuple[str, str]:
    dist = entry.dist
    return (dist.metadata["Name"], dist.version) if dist is not None else ("?", "?")


def _load(entry: metadata.EntryPoint, rivals: tuple[metadata.EntryPoint, ...]) -> PluginStatus:
    """Import and check one entry point; never raises (a broken plugin is reported)."""
    dist_name, version = _distribution(entry)
    if len(rivals) > 1:
        owners = ", ".join(_distribution(e)[0] for e in rivals)
        error = f"modality name {entry.name!r} is registered by several distributions: {owners}"
        return PluginStatus(entry.name, dist_name, version, None, error)
    try:
        plugin = _instantiate(entry.load(), entry.name)
    except Exception as exc:  # a broken plugin is reported, never raised here
        return PluginStatus(entry.name, dist_name, version, None, f"{type(exc).__name__}: {exc}")
    return PluginStatus(entry.name, dist_name, version, plugin, None)


def _instantiate(obj: object, name: str) -> ModalityPlugin:
    """The plugin of an entry point: a :class:`ModalityPlugin` subclass (instantiated) or
    instance."""
    if inspect.isclass(obj):
        if not issubclass(obj, ModalityPlugin):
            raise PluginError(
                f"entry point {name!r} is not a negev.plugins.ModalityPlugin: {obj!r}"
            )
        if inspect.isabstract(obj):
            missing = ", ".join(sorted(obj.__abstractmethods__))
            raise PluginError(f"plugin does not implement {missing}")
        obj = obj()
    if not isinstance(obj, ModalityPlugin):
        raise PluginError(f"entry point {name!r} is not a negev.plugins.ModalityPlugin: {obj!r}")
    for attribute in ("name", "description"):
        if not isinstance(getattr(obj, attribute, None), str):
            raise PluginError(f"plugin has no string attribute {attribute!r}")
    if obj.name != name:
        raise PluginError(f"plugin calls itself {obj.name!r} but is registered as {name!r}")
    return obj
