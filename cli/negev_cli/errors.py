"""One readable line per error, a non-zero exit code, a traceback only with ``--debug``.

A known error is the user's to fix: a :class:`negev.errors.NegevError`, a ``ValueError`` (the
toolkit's and the plugins' way to refuse bad input), a file that cannot be read, memory running
out. It prints as ``error: <message>``. Anything else is a bug in negev or in a plugin and prints
as ``internal error in <module.function>: <type>: <message> (rerun with --debug, or report it)``.
negev's warnings (:class:`negev.engine.checkpoint.RunWarning`) print as one line each.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from negev.engine.checkpoint import RunWarning
from negev.errors import NegevError

_state = {"debug": False}
err = Console(stderr=True)

KNOWN_ERRORS = (NegevError, ValueError, OSError, MemoryError)
# libraries whose frames are never "where" a bug is: the innermost frame of our code is
_LIBRARIES = frozenset({"torch", "numpy", "typer", "click", "rich", "sklearn", "scipy", "optuna"})


def set_debug(value: bool) -> None:
    _state["debug"] = value


def is_known(exc: BaseException) -> bool:
    """Whether ``exc`` reports a problem with the user's input or machine, not a bug."""
    # torch.OutOfMemoryError subclasses RuntimeError; matched by name to avoid importing torch
    return isinstance(exc, KNOWN_ERRORS) or type(exc).__name__ == "OutOfMemoryError"


def error_line(exc: BaseException) -> str:
    """The one line that reports ``exc`` (rich markup)."""
    message = escape(str(exc) or type(exc).__name__)
    if is_known(exc):
        if isinstance(exc, OSError) and exc.filename:
            message = escape(f"{exc.filename}: {exc.strerror or message}")
        return f"[red]error:[/red] {message}"
    return (
        f"[red]internal error in {where(exc.__traceback__)}:[/red] {type(exc).__name__}: "
        f"{message} (rerun with --debug, or report it)"
    )


def where(trace: TracebackType | None) -> str:
    """``module.function`` of the innermost frame outside the standard library and the
    third-party libraries above (the negev or plugin code that failed)."""
    found = "?"
    while trace is not None:
        frame = trace.tb_frame
        module = str(frame.f_globals.get("__name__", "?"))
        root = module.partition(".")[0]
        if root not in _LIBRARIES and root not in sys.stdlib_module_names:
            found = f"{module}.{frame.f_code.co_name}"
        trace = trace.tb_next
    return found


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of ``command`` into one line (see the module) and exit code 1."""

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
            err.print(error_line(exc), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warning: <message>`` for negev's run warnings, Python's format for the others."""
    if issubclass(category, RunWarning):
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)
    else:
        err.print(warnings.formatwarning(message, category, filename, lineno, line), end="")
