"""One readable line per error, a non-zero exit code, a traceback only with ``--debug``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

_state = {"debug": False}
err = Console(stderr=True)


def set_debug(value: bool) -> None:
    _state["debug"] = value


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of ``command`` into ``error: <message>`` and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
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
            if isinstance(exc, FileNotFoundError) and exc.filename:
                message = f"{exc.filename}: {exc.strerror or message}"
            err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
