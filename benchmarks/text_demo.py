"""The text plugin on its demo: which pooling reads complaints, contrasts and denials.

A review is positive when it praises and holds no complaint, no "but <complaint>" and no denial
("i would not say ..."); every negative review but the plain ones holds the same praise as a
positive one. Each pooling is trained with the same budget; the table gives test accuracy and mAP,
the token AUPRC and F1 of the negative evidence (complaint words, negation words) and the token
AUPRC of the positive evidence (the praise), and the train time.

Run:  python -m benchmarks.text_demo
Writes benchmarks/results/text.md.
"""

from __future__ import annotations

from benchmarks._runs import demo_arguments, seed_table, train_rows, write_lines

ROWS = {
    "max": {"pooling": "max"},
    "GAP": {"pooling": "gap"},
    "max+min": {"pooling": "maxmin", "alpha": 1.0},
    "WELDON k=0.1": {"pooling": "weldon", "kmax": 0.1, "alpha": 1.0},
    "WELDON k=0.2": {"pooling": "weldon", "kmax": 0.2, "alpha": 1.0},
    "WILDCAT k=0.2 a=0.7": {"pooling": "wildcat", "kmax": 0.2, "alpha": 0.7},
    "LSE b=5": {"pooling": "lse", "beta_pos": 5.0, "beta_neg": -5.0, "alpha": 1.0},
}
COLUMNS = {
    "accuracy": "test accuracy",
    "mAP": "test AP",
    "negative_token_auprc": "negative token AUPRC (per text)",
    "negative_token_auprc_pooled": "negative token AUPRC (pooled)",
    "negative_token_f1": "negative token F1",
    "positive_token_auprc": "positive token AUPRC (per text)",
    "seconds": "train s",
}


def main() -> None:
    args = demo_arguments(__doc__, "text", epochs=8, seeds=[0, 1, 2, 3])
    results = train_rows("text", ROWS, args.epochs, args.seeds)
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
        "Token F1: the top-k tokens of each text, k = its true tokens. Accuracy: score > 0.",
        "",
        *seed_table(results, COLUMNS),
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
