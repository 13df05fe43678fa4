"""ERASER (DeYoung et al., ACL 2020; code: jayded/eraserbenchmark,
``rationale_benchmark/metrics.py``): its annotation files, IOU F1, and the faithfulness metrics
comprehensiveness and sufficiency.

* :func:`iou_f1` (``partial_match_score``): a predicted rationale span matches when its token
  IoU with some true span of the same text is >= 0.5; precision and recall are averaged over the
  texts, and F1 is the F1 of the two averages ("macro", as ERASER reports). Soft token scores
  become spans by :func:`top_k_spans`: the top ``k`` tokens of each text, ``k`` the mean true
  rationale length over the texts (ERASER's discretisation of soft scores), contiguous runs
  forming spans.
* :func:`faithfulness`: with p(y | x) the model's probability of its own decision y on text x,
  and r_k the top ``floor(k * n)`` tokens of the n-token text by the evidence for y,
  comprehensiveness = mean_k [p(y | x) - p(y | x without r_k)] and
  sufficiency = mean_k [p(y | x) - p(y | r_k alone)], k in {1, 5, 10, 20, 50} % (the AOPC
  bins; ``int(k_fraction * len(doc))`` tokens in the reference code). High comprehensiveness
  and low sufficiency mean the evidence is what the model used.
* :func:`read_eraser` / :func:`to_jsonl`: an ERASER data folder (``{split}.jsonl`` annotations
  with ``annotation_id``, ``classification``, ``evidences`` = groups of ``{docid, start_token,
  end_token}``, ``docids``; documents in ``docs/<docid>`` as whitespace tokens, one sentence a
  line, or ``docs.jsonl``) -> the text plugin's JSONL (``text``, ``label``, ``positive_spans``
  in characters). Run ``python -m negev_text.eraser DATA_DIR --split test --out test.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "AOPC_FRACTIONS",
    "faithfulness",
    "iou_f1",
    "read_eraser",
    "to_jsonl",
    "top_k_spans",
]

AOPC_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)

Span = tuple[int, int]  # token indices [start, end)


def top_k_spans(values: np.ndarray, k: int) -> list[Span]:
    """The contiguous runs ``[start, end)`` of the ``k`` highest-scored tokens (ties: the
    earlier token first)."""
    chosen = np.zeros(len(values), dtype=bool)
    chosen[np.argsort(-np.asarray(values), kind="stable")[:k]] = True
    spans, start = [], None
    for i, flag in enumerate([*chosen, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _f1(p: float, r: float) -> float:
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def iou_f1(
    truth: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]], threshold: float = 0.5
) -> float:
    """ERASER's macro IOU F1 over texts (per text: its true spans and its predicted spans)."""
    precisions, recalls = [], []
    for true_spans, pred_spans in zip(truth, predicted, strict=True):
        hits = 0
        for p in pred_spans:
            tokens = set(range(*p))
            best = max(
                (len(tokens & set(range(*t))) / len(tokens | set(range(*t))) for t in true_spans),
                default=0.0,
            )
            hits += best >= threshold
        if true_spans:
            recalls.append(hits / len(true_spans))
        if pred_spans:
            precisions.append(hits / len(pred_spans))
    p = float(np.mean(precisions)) if precisions else 0.0
    r = float(np.mean(recalls)) if recalls else 0.0
    return _f1(p, r)


def faithfulness(
    probability: Callable[[list[tuple[int, list[int]]]], np.ndarray],
    lengths: Sequence[int],
    evidence: Sequence[np.ndarray],
    fractions: Sequence[float] = AOPC_FRACTIONS,
) -> dict[str, float]:
    """ERASER's comprehensiveness and sufficiency (AOPC over ``fractions``).

    Args:
        probability: given ``(text index, indices of the tokens kept, in order)`` pairs, the
            model's probability of its decision on that full text, for each pair (len,) float.
        lengths: tokens per text. evidence: per text, (n,) scores of the evidence for the
            model's decision (higher = more for it).

    Returns:
        ``{"comprehensiveness", "sufficiency"}``, means over texts and fractions.
    """
    full = probability([(i, list(range(n))) for i, n in enumerate(lengths)])
    removed, kept = [], []
    for i, (n, values) in enumerate(zip(lengths, evidence, strict=True)):
        order = np.argsort(-np.asarray(values), kind="stable")
        for fraction in fractions:
            top = set(order[: math.floor(fraction * n)].tolist())
            removed.append((i, [t for t in range(n) if t not in top]))
            kept.append((i, [t for t in range(n) if t in top]))
    count = len(fractions)
    without = np.asarray(probability(removed)).reshape(len(lengths), count)
    alone = np.asarray(probability(kept)).reshape(len(lengths), count)
    return {
        "comprehensiveness": float((full[:, None] - without).mean()),
        "sufficiency": float((full[:, None] - alone).mean()),
    }


# -- ERASER files ---------------------------------------------------------------------------
def _documents(data_dir: Path, docids: set[str]) -> dict[str, list[str]]:
    """docid -> its tokens (sentences joined)."""
    docs: dict[str, list[str]] = {}
    if (data_dir / "docs.jsonl").is_file():
        for number, line in enumerate((data_dir / "docs.jsonl").read_text().splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    document = row["document"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValueError(
                        f"{data_dir / 'docs.jsonl'}:{number}: not a document"
                    ) from None
                if row.get("docid") in docids:
                    text = document if isinstance(document, str) else " ".join(document)
                    docs[row["docid"]] = text.split()
    for docid in docids - set(docs):
        path = data_dir / "docs" / docid
        if not path.is_file():
            raise ValueError(f"{path}: missing document {docid!r}")
        docs[docid] = path.read_text(encoding="utf-8").split()
    return docs


def read_eraser(data_dir: str | Path, split: str) -> list[dict]:
    """The annotations of ``{split}.jsonl`` with their documents: per annotation ``{"id",
    "text" (tokens joined by spaces), "label", "positive_spans" (character spans of its
    evidences)}``. Annotations over several documents (e.g. e-SNLI's premise and hypothesis)
    get their documents joined in ``docids`` order. A malformed line names the file and line."""
    data_dir = Path(data_dir)
    path = data_dir / f"{split}.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    annotations = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            groups = row["evidences"]
            label = row["classification"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path}:{number}: not an ERASER annotation") from None
        evidences = [e for group in groups for e in group]
        docids = row.get("docids") or sorted({e["docid"] for e in evidences})
        if not docids:
            raise ValueError(f"{path}:{number}: no document (docids and evidences empty)")
        annotations.append((number, row.get("annotation_id", str(number)), label, docids,
                            evidences))  # fmt: skip
    docs = _documents(data_dir, {d for a in annotations for d in a[3]})
    out = []
    for number, annotation_id, label, docids, evidences in annotations:
        text, starts, offsets = "", {}, {}
        for docid in docids:
            offsets[docid] = len(starts)
            for token in docs[docid]:
                text += " " if text else ""
                starts[len(starts)] = (len(text), len(text) + len(token))
                text += token
        spans = []
        for e in evidences:
            first, last = e.get("start_token", -1), e.get("end_token", -1)
            if e.get("docid") not in offsets or not 0 <= first < last <= len(docs[e["docid"]]):
                raise ValueError(f"{path}:{number}: evidence {e!r} is outside its document")
            base = offsets[e["docid"]]
            spans.append((starts[base + first][0], starts[base + last - 1][1]))
        out.append({"id": annotation_id, "text": text, "label": label,
                    "positive_spans": sorted(set(spans))})  # fmt: skip
    return out


def to_jsonl(data_dir: str | Path, split: str, out: str | Path) -> int:
    """Write :func:`read_eraser`'s records as the text plugin's JSONL; returns their count."""
    records = read_eraser(data_dir, split)
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description="An ERASER data folder -> the text plugin's JSONL")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(f"wrote {to_jsonl(args.data_dir, args.split, args.out)} texts to {args.out}")


if __name__ == "__main__":
    main()
