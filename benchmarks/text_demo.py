"""The text plugin on its demo: which pooling reads complaints, contrasts and denials.

A review is positive when it praises and holds no complaint, no "but <complaint>" and no denial
("i would not say ..."); every negative review but the plain ones holds the same praise as a
positive one. Each pooling is trained with the same budget; the table gives test accuracy and mAP,
the token AUPRC, F1 and ERASER's IOU F1 of the negative evidence (complaint words, negation words),
the token AUPRC of the positive evidence (the praise), ERASER's comprehensiveness and sufficiency of
the evidence for each decision (the model scores the reduced texts again), and the train time.

Run:  python -m benchmarks.text_demo
Writes benchmarks/results/text.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks._runs import demo_arguments, seed_table, train_and_measure, write_lines
from negev.engine import load_model, predict
from negev.engine.trainer import prepare_data

ROWS = {
    "max": {"pooling": "max"},
    "GAP": {"pooling": "gap"},
    "max+min": {"pooling": "maxmin", "alpha": 1.0},
    "WELDON k=0.1": {"pooling": "weldon", "kmax": 0.1, "alpha": 1.0},
    "WELDON k=0.2": {"pooling": "weldon", "kmax": 0.2, "alpha": 1.0},
    "WILDCAT k=0.2 a=0.7": {"pooling": "wildcat", "kmax": 0.2, "alpha": 0.7},
    "LSE b=5": {"pooling": "lse", "beta_pos": 5.0, "beta_neg": -5.0, "alpha": 1.0},
}
# The model the table compares poolings on: convolutional windows (widths 1-3) over the
# training vocabulary, as the demo was designed with (the plugin's default is now the hashed
# n-gram encoder with average pooling, chosen for real data).
MODEL = {
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "plugin": {"encoder": "conv", "widths": "1,2,3", "max_tokens": 64, "demo_size": 6000},
}
COLUMNS = {
    "accuracy": "test accuracy",
    "mAP": "test AP",
    "negative_token_auprc": "negative token AUPRC (per text)",
    "negative_token_auprc_pooled": "negative token AUPRC (pooled)",
    "negative_token_f1": "negative token F1",
    "negative_iou_f1": "negative IOU F1",
    "positive_token_auprc": "positive token AUPRC (per text)",
    "comprehensiveness": "comprehensiveness",
    "sufficiency": "sufficiency",
    "seconds": "train s",
}


def measure(options: dict[str, Any], out: Path) -> dict[str, float]:
    """:func:`train_and_measure`, plus the faithfulness metrics, which need the model."""
    metrics = train_and_measure(options, out)
    plugin, config, model, meta = load_model(out)
    test = prepare_data(plugin, config, None).test
    scores, maps = predict(model, plugin, test, 64, torch.device("cpu"), keep_maps=True)
    evidence = plugin.evidence_metrics(
        test, maps, meta["classes"], scores, model=model, multilabel=meta["multilabel"]
    )
    return {**metrics, **evidence}


def train_rows(epochs: int, seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    """Every row for every seed, printed as they come."""
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, options) in enumerate(ROWS.items()):
            for seed in seeds:
                run = {"modality": "text", "epochs": epochs, "seed": seed, **MODEL, **options}
                metrics = measure(run, Path(tmp) / f"{index}-{seed}")
                results.setdefault(name, []).append(metrics)
                shown = {k: round(v, 3) for k, v in metrics.items()}
                print(name, "seed", seed, json.dumps(shown), flush=True)
    return results


def main() -> None:
    args = demo_arguments(__doc__, "text", epochs=8, seeds=[0, 1, 2, 3])
    results = train_rows(args.epochs, args.seeds)
    lines = [
        "# Text plugin: complaints, contrasts and denials as negative evidence",
        "",
        "Demo (`negev_text.data.demo`): 6,000 generated reviews (70/15/15) of one class, "
        "`positive`: praise without a complaint in another sentence, a `but <complaint>` in the "
        "same one, or a denial (`i would not say the food was good`); those three kinds hold "
        "the praise word for word, so max pooling cannot tell them from positive reviews. Plain "
        "judgements, filler-only reviews, and 1-4 sentences of rare made-up words in every "
        "review. Convolutional window encoder (widths 1-3), BCE, "
        f"{args.epochs} epochs, seeds {args.seeds} (mean ± half the spread), CPU, 2 threads. "
        "Command: `python -m benchmarks.text_demo`.",
        "",
        "Token evidence: each window's score spread evenly over its tokens and summed; tokens "
        "ranked by it (negative evidence: most negative first) against the complaint and "
        "negation words (negative) or the praise (positive). Per text: ERASER's token AUPRC, "
        "averaged over the texts that have such spans; pooled: one ranking of all their tokens. "
        "Token F1: the top-k tokens of each text, k = its true tokens. IOU F1 (ERASER): runs of "
        "each text's top-k tokens, k = the mean true length, matching a true span at token IoU "
        ">= 0.5; macro over texts. Comprehensiveness / sufficiency (ERASER, AOPC over 1, 5, 10, "
        "20, 50 %): the drop of the probability of the model's decision (present / absent) when "
        "the top tokens of the evidence for it are removed / kept alone; every test text. "
        "Accuracy: score > 0.",
        "",
        *seed_table(results, COLUMNS),
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
