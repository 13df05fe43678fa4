"""Typed plugin options: a plugin declares its options once, the engine checks them.

A plugin sets :attr:`~negev.plugins.ModalityPlugin.options_class` to a frozen dataclass whose
fields are its options (the keys of the ``[plugin]`` TOML table and of ``--set key=value``),
each with a type, a default and a help line (:func:`option`)::

    @dataclass(frozen=True)
    class TokensOptions:
        demo_size: int = option(600, "items of the built-in demo")
        swap: float = option(0.1, "share of filler tokens swapped in training")

:func:`parse_options` turns a table of raw values (text from the command line, TOML values,
a saved ``config.json``) into an instance: an unknown key is an error that lists the valid ones
and suggests the closest, a value of the wrong type an error naming the key, the expected type
and the value. An option that only has an effect under some values of another (``buckets``
only under ``encoder=hashed``) says so (``option(..., applies={"encoder": ("hashed",)})``):
set elsewhere, it is refused (:func:`ignored_options`) instead of being silently ignored.
Supported types: ``bool`` (true/false, 1/0, yes/no), ``int``, ``float``,
``str``, ``Literal[...]`` (one of fixed values), ``tuple[T, ...]`` (comma-separated text or a
TOML list) and ``X | None`` (``none`` or an empty text for None).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

__all__ = [
    "describe_options",
    "guess_value",
    "ignored_options",
    "option",
    "parse_options",
    "plugin_table",
    "type_name",
    "without_ignored",
]

T = TypeVar("T")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


_NEW = object()  # an option without a value for runs saved before it


def option(
    default: Any,
    help: str,  # noqa: A002
    *,
    saved_before: Any = _NEW,
    applies: Mapping[str, tuple[Any, ...]] | None = None,
    otherwise: Any = _NEW,
) -> Any:
    """A dataclass field: an option's ``default`` and its one-line ``help`` (the word the CLI
    uses).

    Args:
        saved_before: the value that reproduces what a run saved before the option existed (its
            ``config.json`` has no such key) was trained with, when that is not the default;
            :func:`plugin_table` reads saved tables with it.
        applies: the values of other options under which this one has an effect
            (``{"encoder": ("hashed",)}``); set elsewhere it is refused
            (:func:`ignored_options`).
        otherwise: the value the option in effect has where it does not apply (``warm_start``:
            False, no encoder but the hashed one is warm-started), accepted there as the default
            is.
    """
    metadata: dict[str, Any] = {"help": help}
    if saved_before is not _NEW:
        metadata["saved_before"] = saved_before
    if applies:
        metadata["applies"] = {key: tuple(values) for key, values in applies.items()}
    if otherwise is not _NEW:
        metadata["otherwise"] = otherwise
    return dataclasses.field(default=default, metadata=metadata)


def ignored_options(options: Any, owner: str = "plugin") -> dict[str, str]:
    """Option name -> what is wrong, for each option of ``options`` (an options dataclass
    instance) set where it has no effect: its ``applies`` condition fails and its value is
    neither its default nor its ``otherwise``. Empty when there is none."""
    wrong = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if value == field.default or value == field.metadata.get("otherwise", field.default):
            continue
        for key, allowed in field.metadata.get("applies", {}).items():
            if getattr(options, key) not in allowed:
                wrong[field.name] = (
                    f"{owner} option {field.name}={_shown(value)} only applies under "
                    f"{key}={' or '.join(map(_shown, allowed))}, and this run's {key} is "
                    f"{_shown(getattr(options, key))}: drop it or change {key}"
                )
    return wrong


def without_ignored(options: T) -> T:
    """``options`` with every option that has no effect there (its ``applies`` condition fails)
    back at its default: a search trial that changes ``encoder`` leaves the other encoder's
    options behind."""
    reset = {
        field.name: field.default
        for field in dataclasses.fields(options)
        if any(
            getattr(options, key) not in allowed
            for key, allowed in field.metadata.get("applies", {}).items()
        )
    }
    return dataclasses.replace(options, **reset)


def _shown(value: Any) -> str:
    """An option value as the command line writes it (``1,2`` for a tuple, ``true``)."""
    if isinstance(value, tuple):
        return ",".join(map(_shown, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_options(
    cls: type[T], values: Mapping[str, Any], *, owner: str = "plugin", strict: bool = True
) -> T:
    """An instance of the options dataclass ``cls`` from raw ``values`` (defaults elsewhere).

    Args:
        owner: how messages name the options' owner (the modality).
        strict: an unknown key is an error; with False it is left out (a saved run whose table
            holds a key an older version ignored).

    Raises:
        ValueError: an unknown key (listing the valid ones, suggesting the closest) or a value
            that does not have the option's type (naming key, type and value).
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    parsed = {}
    for key, value in values.items():
        if key not in names:
            if not strict:
                continue
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {owner} option {key!r}{hint} (valid: {', '.join(names)})")
        try:
            parsed[key] = _coerce(hints[key], value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner} option {key!r} must be {type_name(hints[key])}, got {value!r}"
            ) from None
    return cls(**parsed)


def describe_options(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` of every option of ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [
        (f.name, type_name(hints[f.name]), f.default, f.metadata.get("help", ""))
        for f in dataclasses.fields(cls)
    ]


def type_name(annotation: Any) -> str:
    """How messages and ``negev plugins --options`` write a type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in inner) + " or none"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is tuple:
        plural = {int: "ints", float: "numbers", str: "texts", bool: "true / false values"}
        return f"comma-separated {plural.get(args[0], type_name(args[0]))}"
    return {bool: "true or false", int: "an int", float: "a number", str: "text"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _coerce(annotation: Any, value: Any) -> Any:
    """``value`` as the type ``annotation``; TypeError / ValueError when it is not one."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value)
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and value.strip() == str(choice)):
                return choice
        raise ValueError(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        elif not isinstance(value, list | tuple):
            value = [value]
        return tuple(_coerce(args[0], item) for item in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(value)
    if annotation is int:
        if isinstance(value, bool) or isinstance(value, float):
            raise TypeError(value)
        return int(value.strip()) if isinstance(value, str) else int(value)
    if annotation is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if annotation is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(value)
        return str(value)
    raise TypeError(f"unsupported option type {annotation!r}")


def guess_value(value: Any) -> Any:
    """A command-line value for a plugin that declares no options: text read as a bool
    (true / false), an int or a float where it is one, else kept as text."""
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def plugin_table(
    plugin: Any,
    values: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    reset_ignored: bool = False,
) -> dict[str, Any]:
    """A run's ``plugin`` table checked against ``plugin.options_class`` and completed with its
    defaults (JSON-ready: what ``config.json`` saves); ``overrides`` (command-line text, always
    checked strictly) win over ``values``. A plugin without options class gets the table as
    given, command-line values read by :func:`guess_value`.

    ``strict=False`` reads a saved table: a key the plugin no longer declares is left out, and
    an option the table lacks (declared since) takes its ``saved_before`` value, where it has
    one (:func:`option`), instead of its default. ``reset_ignored``: options that have no
    effect under the others' values go back to their defaults (:func:`without_ignored`)."""
    cls = getattr(plugin, "options_class", None)
    if cls is None:
        return {**values, **{k: guess_value(v) for k, v in (overrides or {}).items()}}
    if not strict:
        former = {
            f.name: f.metadata["saved_before"]
            for f in dataclasses.fields(cls)
            if "saved_before" in f.metadata and f.name not in values
        }
        values = {**former, **values}
    base = parse_options(cls, values, owner=plugin.name, strict=strict)
    if overrides:
        known = dataclasses.asdict(base)
        base = parse_options(cls, {**known, **overrides}, owner=plugin.name)
    if reset_ignored:
        base = without_ignored(base)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(base).items()}
