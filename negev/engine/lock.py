"""One writer per run directory: a lock held while ``train`` or ``tune`` writes into it.

The lock is an OS file lock (``flock`` through :mod:`filelock`) on ``<run>/.negev.lock``: the
system releases it when its process ends, however it ends (SIGKILL included), so a lock is
never left behind. Who holds it is written beside it, in ``.negev.lock.holder`` (process id,
host, start time), removed when the lock is released: a second writer fails at once naming the
holder, and a holder file found by the process that takes the lock is that of a process that
died holding it, which is said.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from negev.engine.checkpoint import RunWarning, write_json
from negev.errors import NegevError

__all__ = ["RunLock", "RunLockedError"]

LOCK = ".negev.lock"
HOLDER = ".negev.lock.holder"


class RunLockedError(NegevError):
    """Another process holds the run directory's lock."""


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory (created if needed) for this process.

    Raises:
        RunLockedError: another process holds it (its id and host are named).
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._lock = FileLock(self.run_dir / LOCK)

    def __enter__(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self._holder() or "another process"
            advice = "wait for it to end, or choose another --out"
            raise RunLockedError(f"{self.run_dir} is in use by {holder}: {advice}") from None
        try:
            stale = self._holder()
            if stale:
                warnings.warn(
                    f"{self.run_dir}: took over the lock of {stale}, which ended without "
                    "releasing it",
                    RunWarning,
                    stacklevel=2,
                )
            write_json(
                self.run_dir / HOLDER,
                {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()},
            )
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            (self.run_dir / HOLDER).unlink(missing_ok=True)
        finally:
            self._lock.release()

    def _holder(self) -> str | None:
        """Who the holder file names ("process 123 on host h since 18:02:11 UTC"), or None."""
        try:
            holder = json.loads((self.run_dir / HOLDER).read_text())
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["since"]))
            return f"process {holder['pid']} on host {holder['host']} (since {since})"
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return "a process whose record is unreadable"
