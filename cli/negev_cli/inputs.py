"""What ``--input`` may name: one item, never a dataset file (``predict`` and ``explain``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_SUFFIXES", "refuse_data_files"]

#: Suffixes of the dataset files ``--data`` reads (CSV, JSONL, SDF), never one item of a plugin.
DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".sdf", ".sd")


def refuse_data_files(inputs: list[str], command: str) -> None:
    """An ``--input`` naming a dataset file is an error pointing to ``--data``: the text plugin
    would score the file's name as a text, others report it unreadable as one item.

    Raises:
        ValueError: naming the input, for ``command`` (``predict`` or ``explain``).
    """
    for item in inputs:
        # os.path.isfile: False, not an error, for a long literal text that is no file name
        if Path(item).suffix.lower() in DATA_SUFFIXES and os.path.isfile(item):
            hint = (f"give it as --data {item}" if command == "predict" else
                    f"score its items with negev predict --data {item}")  # fmt: skip
            raise ValueError(f"--input {item} is a data file, and --input takes one item: {hint}")
