"""Registries of named factories (poolings, losses), in the manner of torchvision's ``_api.py``.

A factory is a class or any callable; the keyword parameters of its signature, with their
defaults, are the parameters its name accepts. Building by name refuses a parameter the factory
does not take (naming the ones it does), and registering a taken name is refused.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from negev.errors import ConfigError, PluginError

__all__ = ["Entry", "Registry"]

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class Entry:
    """One registered factory.

    Attributes:
        name: the registered name. factory: the class or callable that builds it.
        defaults: parameter -> its default (``inspect.Parameter.empty`` for a required one),
            the context parameters excluded. summary: one line for listings and ``--help``.
    """

    name: str
    factory: Callable[..., Any]
    defaults: dict[str, Any]
    summary: str

    def resolve(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter this entry takes: its defaults overridden by ``params`` (a None value
        means unset: the default stays); :class:`ConfigError` for a parameter it does not take."""
        for key, value in params.items():
            if key not in self.defaults and value is not None:
                raise ConfigError(f"{kind} {self.name!r} {self._takes(key)}")
        resolved = {
            key: default if params.get(key) is None else params[key]
            for key, default in self.defaults.items()
        }
        required = [k for k, v in resolved.items() if v is _MISSING]
        if required:
            raise ConfigError(f"{kind} {self.name!r} needs {', '.join(required)}")
        return resolved

    def _takes(self, key: str) -> str:
        if not self.defaults:
            return f"({self.summary}) takes no parameter, got {key!r}"
        close = difflib.get_close_matches(key, list(self.defaults), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"({self.summary}) takes no {key!r}{hint}; its parameters: {', '.join(self.defaults)}"
        )


class Registry:
    """Name -> factory, for one kind of component.

    Args:
        kind: what is registered (``"pooling"``), used in messages.
        context: parameters the caller supplies from the situation rather than the user (the
            loss's ``multilabel``); passed only to the factories that declare them.
    """

    def __init__(self, kind: str, context: tuple[str, ...] = ()):
        self.kind = kind
        self.context = context
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, factory: Callable[..., Any] | None = None, *, summary: str = ""
    ) -> Any:
        """Register ``factory`` (a class or a callable) as ``name``; as a decorator without
        ``factory``. :class:`PluginError` if the name is taken or the factory is not callable."""

        def add(target: Callable[..., Any]) -> Callable[..., Any]:
            if not isinstance(name, str) or not name:
                raise PluginError(f"a {self.kind} name must be a non-empty string, got {name!r}")
            if name in self._entries:
                owner = _qualified(self._entries[name].factory)
                raise PluginError(f"{self.kind} {name!r} is already registered (by {owner})")
            if not callable(target):
                raise PluginError(f"{self.kind} {name!r}: {target!r} is not a class or callable")
            doc = summary or (inspect.getdoc(target) or name).splitlines()[0].rstrip(".")
            self._entries[name] = Entry(name, target, self._defaults(target), doc)
            return target

        return add if factory is None else add(factory)

    def create(self, name: str | Callable[..., Any], /, **params: Any) -> Any:
        """Build ``name`` (a registered name, or a class / callable used as is) with ``params``.

        Context parameters (see the class) are passed only to factories that take them.
        """
        context = {k: params.pop(k) for k in self.context if k in params}
        if not isinstance(name, str):
            if not callable(name):
                raise ConfigError(f"a {self.kind} is a name, a class or a callable, got {name!r}")
            return name(**_accepted(name, context), **params)
        entry = self.get(name)
        resolved = entry.resolve(self.kind, params)
        return entry.factory(**_accepted(entry.factory, context), **resolved)

    def get(self, name: str) -> Entry:
        """The entry of ``name``; :class:`ConfigError` naming the registered ones if unknown."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), list(self._entries), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(self._entries)
            message = f"unknown {self.kind} {name!r}{hint}; choose one of {known}"
            raise ConfigError(message) from None

    def resolve(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters ``create(name, **params)`` builds with (defaults filled in)."""
        return self.get(name).resolve(self.kind, params)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries.values())

    def _defaults(self, factory: Callable[..., Any]) -> dict[str, Any]:
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # a builtin without a signature: no parameters
            return {}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {
            p.name: p.default
            for p in signature.parameters.values()
            if p.kind in kinds and p.name not in self.context
        }


def _accepted(factory: Callable[..., Any], context: dict[str, Any]) -> dict[str, Any]:
    """The context parameters ``factory`` declares."""
    if not context:
        return {}
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in context.items() if k in parameters}


def _qualified(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', repr(factory))}"
