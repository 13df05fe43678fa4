"""Text datasets: CSV and JSONL readers and a generated demo where absence decides.

Every unusable line (empty text, undecodable bytes, an unknown label, a malformed span) becomes a
:class:`~negev.plugins.BadItem` naming the file and line.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from negev.plugins import BadItem, DataSplits, Example
from negev.plugins.manifest import split_value
from negev.plugins.tables import (
    ENCODING_HINT,
    check_split_column,
    data_file,
    item_name,
    read_csv_rows,
    repeated,
    text_bytes,
)
from negev_text.options import TextOptions

DEMO_CLASSES = ["positive"]
_SUBJECTS = ["the food", "the service", "the room", "this phone", "the movie", "the staff"]
_PRAISE = ["good", "great", "excellent", "lovely", "superb", "wonderful"]
_COMPLAINT = ["overpriced", "rude", "broken", "too slow", "noisy", "dirty"]
_PLAIN = ["ok", "average", "there", "new", "small", "as expected"]
_FRAMES = ["{} was ", "{} is ", "we found {} ", "{} felt ", "honestly {} was ", "to be fair {} is "]
# an opinion said outright, and the same words with a negation ({} marks the negation)
_OPINIONS = ["i would say ", "i can say ", "everyone would say ", "they all say "]
_DENIALS = ["i would {} say ", "i can {} say ", "{} would say ", "they {} say "]
_NEGATIONS = [("not", "never"), ("not", "never"), ("nobody", "no one"), ("never", "hardly")]
_FILLER = [
    "we went there on a sunday", "it was busy", "i came back last week", "my sister joined me",
    "the place is near the station", "we stayed two nights", "it opened in may",
]  # fmt: skip
_KINDS = ["praise"] * 3 + ["complaint", "contrast", "denial", "plain", "none"]


def demo(size: int, seed: int) -> list[Example]:
    """Reviews of one class, ``positive`` (present or absent): a review is positive when it
    praises something and holds no complaint ("we found the room noisy" in another sentence,
    "good but overpriced" in the same one) and no denial of the praise ("i would not say the food
    was good"). Kinds, in proportions 3:1:1:1:1:1: praise, complaint, contrast, denial, a plain
    judgement ("the room was ok"), nothing but filler.

    Every review that is negative for a reason holds the very praise a positive one holds, so its
    best window is as high as a positive review's: max pooling cannot tell them apart, only a
    pooling that also reads the lowest windows can. A negation inside the praise ("was not good")
    is left out on purpose: there the praise window itself is missing, and max pooling reads
    that absence. No word but the evidence tells the kinds apart: "but", "would", "say" and the
    frames occur in positive reviews too ("small but lovely", "i would say ..."), and filler
    sentences and made-up chatter (1-4 sentences of rare words) appear in every kind alike.
    Ground truth, for evaluation only: the praise is positive evidence; the complaint, or the
    negation word of a denial ("not", "never", "nobody", ...), negative evidence.

    Returns:
        ``size`` examples named ``demo-<index>``; labels ``(0,)`` (positive) or ``()``; truth
        ``{"positive_spans": [(start, end), ...], "negative_spans": [...]}`` in characters.
    """
    rng = random.Random(seed)
    examples = []
    for index in range(size):
        kind = rng.choice(_KINDS)
        first, second = (rng.choice(_FRAMES).format(s) for s in rng.sample(_SUBJECTS, 2))
        praise = rng.choice(_PRAISE)
        # a sentence is a list of (words, sign): sign is None or the evidence the words carry
        if kind == "plain":
            sentences = [[(first + rng.choice(_PLAIN), None)]]
        elif kind == "none":
            sentences = []
        elif rng.random() < 0.3:  # "but" on its own is no cue: "the room was small but lovely"
            sentences = [[(first + rng.choice(_PLAIN) + " but ", None), (praise, "positive")]]
        else:
            sentences = [[(first, None), (praise, "positive")]]
        if kind in ("praise", "complaint", "contrast") and rng.random() < 0.5:
            sentences[0].insert(0, (rng.choice(_OPINIONS), None))
        if kind == "denial":
            which = rng.randrange(len(_DENIALS))
            before, after = _DENIALS[which].split("{}")
            negation = rng.choice(_NEGATIONS[which])
            sentences[0][:0] = [(before, None), (negation, "negative"), (after, None)]
        if kind == "contrast":
            sentences[0] += [(" but ", None), (rng.choice(_COMPLAINT), "negative")]
        if kind == "complaint":
            complaint = [(second, None), (rng.choice(_COMPLAINT), "negative")]
            sentences.insert(rng.choice([0, 1]), complaint)
        if rng.random() < 0.6 or kind == "none":
            sentences.insert(rng.randint(0, len(sentences)), [(rng.choice(_FILLER), None)])
        for _ in range(rng.randint(1, 4)):
            sentences.insert(rng.randint(0, len(sentences)), [(_chatter(rng), None)])
        text, spans = "", {"positive": [], "negative": []}
        for sentence in sentences:
            text += ". " if text else ""
            for words, sign in sentence:
                if sign:
                    spans[sign].append((len(text), len(text) + len(words)))
                text += words
        truth = {"positive_spans": spans["positive"], "negative_spans": spans["negative"]}
        labels = (0,) if kind == "praise" else ()
        examples.append(Example(f"demo-{index}", text, labels, truth))
    return examples


_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "do", "fu", "gi", "ha", "ju"]


def _chatter(rng: random.Random) -> str:
    """A filler sentence of 3-7 rare made-up words (a vocabulary of 14^3 = 2,744 words, each
    seen a few times): noise that every window-averaging pooling has to learn to ignore."""
    return " ".join(
        "".join(rng.choice(_SYLLABLES) for _ in range(3)) for _ in range(rng.randint(3, 7))
    )


def load(path: Path, options: TextOptions, seed: int = 0, labelled: bool = True) -> DataSplits:
    """The splits of a CSV / JSONL file (see :func:`read`): the file's ``split`` column when it
    has one, else cut 70/15/15 by ``seed``. When no line can be used the splits are empty and
    every line is in ``bad``, with its reason."""
    rows, bad, classes, multilabel = read(path, options, labelled)
    if not rows and not bad:
        raise ValueError(f"{path}: no text in the file")
    return DataSplits.grouped(rows, classes, multilabel, bad, seed)


def read(
    path: Path, options: TextOptions, labelled: bool = True
) -> tuple[list[tuple[str | None, Example]], list[BadItem], list[str], bool]:
    """CSV or JSONL (by suffix) with a text column and a label column.

    Options: ``text_column`` (``text``), ``label_column`` (``label``; several labels per text
    separated by ``|`` make the data multi-label), ``split_column`` (``split``: train / val /
    test, optional), ``classes`` (comma-separated; labels outside it are bad items; default:
    every label seen), ``max_chars`` (longest text, default 131,072: a longer one is bad),
    ``positive_spans`` / ``negative_spans`` columns of ground-truth character spans
    (``start:end;start:end`` in CSV, ``[[start, end], ...]`` in JSONL), used for evaluation
    only. A text or label column that no line has is an error naming the columns there are.
    ``labelled=False`` (prediction): neither labels nor splits are read (those columns may be
    missing), every example has ``labels=()`` and the classes are ``classes`` or none.

    Returns:
        (split, example) per usable line (split ``all`` when there is no split column), the bad
        lines, the classes, whether the data is multi-label.
    """
    data_file(path)
    text_column, label_column = options.text_column, options.label_column
    split_column, max_chars = options.split_column, options.max_chars
    rows, bad = [], []
    if path.suffix.lower() in (".jsonl", ".json"):
        raw_lines = text_bytes(path).removeprefix(b"\xef\xbb\xbf").split(b"\n")
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            name = f"{path.name}:{number}"
            try:
                row = json.loads(raw.decode("utf-8"), object_pairs_hook=_object)
                if not isinstance(row, dict):
                    bad.append(BadItem(name, f"not a JSON object but a {type(row).__name__}"))
                    continue
                rows.append((item_name(name, row), row))
            except UnicodeDecodeError as exc:
                bad.append(
                    BadItem(name, f"not UTF-8 ({exc.reason} at byte {exc.start}) {ENCODING_HINT}")
                )
            except json.JSONDecodeError as exc:
                bad.append(BadItem(name, f"not JSON: {exc.msg}"))
            except (ValueError, RecursionError) as exc:  # a 5,000-digit number, deep nesting
                bad.append(BadItem(name, f"unusable JSON: {exc}"))
    else:
        table = read_csv_rows(path, field_limit=None)  # the text's limit is max_chars, below
        rows = [(item_name(f"{path.name}:{line}", row), row) for line, row in table.rows]
        bad = table.bad
    columns = {key for _, row in rows if isinstance(row, dict) for key in row}
    needed = (("text_column", text_column), ("label_column", label_column))[: 2 if labelled else 1]
    for option, column in needed:
        if rows and column not in columns:
            raise ValueError(
                f"{path}: no column {column!r} (columns: {', '.join(sorted(columns))}); name it "
                f"with --set {option}=..."
            )
    if rows and labelled:  # prediction reads every item, whatever its split
        check_split_column(split_column, TextOptions.split_column, sorted(columns), path)
    has_split = labelled and split_column in columns
    found = sorted(
        {c.strip() for c in options.classes.split(",") if c.strip()} if options.classes else
        {label for _, row in rows for label in _labels(row.get(label_column))} if labelled else
        set()
    )  # fmt: skip
    multilabel = labelled and any(len(_labels(row.get(label_column))) > 1 for _, row in rows)
    examples = []
    for name, row in rows:
        text = row.get(text_column)
        labels = _labels(row.get(label_column)) if labelled else []
        try:
            if text is not None and not isinstance(text, str):
                raise ValueError(f"the text (column {text_column!r}) is a {_json_type(text)}")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"empty text (column {text_column!r})")
            if len(text) > max_chars:
                raise ValueError(
                    f"text of {len(text)} characters, over the limit of max_chars={max_chars} "
                    "(a plugin option)"
                )
            if labelled and not labels:
                raise ValueError(f"no label (column {label_column!r})")
            split = split_value(row.get(split_column), split_column) if has_split else None
            unknown = [label for label in labels if label not in found]
            if unknown:
                raise ValueError(f"unknown label {unknown[0]!r}; classes are {', '.join(found)}")
            truth = {
                key: _spans(row.get(key), len(text)) for key in ("positive_spans", "negative_spans")
            }
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        labels_found = tuple(found.index(label) for label in labels)
        examples.append((split, Example(name, text, labels_found, truth)))
    return examples, bad, found, multilabel


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is an error (which value holds the data would be a
    guess, as for a CSV header naming a column twice)."""
    twice = repeated([key for key, _ in pairs])
    if twice:
        raise ValueError(f"key(s) {', '.join(map(repr, twice))} given more than once")
    return dict(pairs)


def _json_type(value: Any) -> str:
    """How a message names the JSON type of ``value``."""
    names = {bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _labels(cell: Any) -> list[str]:
    """The labels of a cell: a CSV text (``|``-separated) or a JSON value (a list of labels, a
    text, a number, a bool; null: none). Classes are sorted, given (``classes``) or found."""
    if isinstance(cell, list):
        return [_label_text(c) for c in cell if c is not None]
    if cell is None:
        return []
    return [part.strip() for part in _label_text(cell).split("|") if part.strip()]


def _label_text(value: Any) -> str:
    """A JSON label as text: ``false`` / ``true``, a whole number without its ``.0`` (``1`` and
    ``1.0`` are one class), others as written."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _spans(cell: Any, length: int) -> list[tuple[int, int]]:
    if cell in (None, ""):
        return []
    pairs = cell if isinstance(cell, list) else [p.split(":") for p in str(cell).split(";") if p]
    spans = []
    for pair in pairs:
        try:
            start, end = int(pair[0]), int(pair[1])
        except (ValueError, IndexError, TypeError):
            raise ValueError(f"span {pair!r} is not start:end") from None
        if not 0 <= start < end <= length:
            raise ValueError(f"span {start}:{end} is outside the text (length {length})")
        spans.append((start, end))
    return spans
