"""Running a test file's Triton kernel tests under Triton's interpreter, in a child process.

The interpreter must be chosen before Triton is imported, so a kernel test file runs itself again
with TRITON_INTERPRET=1 (on small CPU tensors), and marks its kernel tests ``in_interpreter`` so
that they run only there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
in_interpreter = pytest.mark.skipif(not INTERPRETED, reason="run by test_interpreted_kernels")


def run_in_interpreter(test_file: str) -> None:
    """Run ``test_file`` under Triton's interpreter in a child pytest; fail with its output."""
    if INTERPRETED:
        pytest.skip("already in the interpreter")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file],
        env=env,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert " passed" in child.stdout and "failed" not in child.stdout
