"""One readable line per error, a non-zero exit code, a traceback only with ``--debug``;
negev's warnings as one line each."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from negev.engine.checkpoint import RunWarning

_state = {"debug": False}
err = Console(stderr=True)


def set_debug(value: bool) -> None:
    _state["debug"] = value


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of ``command`` into ``error: <message>`` and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            message = str(exc) or type(exc).__name__
            if isinstance(exc, OSError) and exc.filename:
                message = f"{exc.filename}: {exc.strerror or message}"
            err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warning: <message>`` for negev's run warnings, Python's format for the others."""
    if issubclass(category, RunWarning):
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)
    else:
        err.print(warnings.formatwarning(message, category, filename, lineno, line), end="")
