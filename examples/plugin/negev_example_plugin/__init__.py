"""A complete minimal negev modality plugin: sequences of integer tokens.

Regions are token positions; the encoder is an embedding and a 1-D convolution. The built-in
demo dataset is generated: class ``alpha`` when the bigram "1 2" occurs and token 7 does not
(negative evidence), class ``beta`` when token 5 occurs. Files: ``tokens,labels`` CSV with
space-separated integer tokens and ``|``-separated labels.

Per-item work (``load_item``, run in the engine's DataLoader workers): the tokens become a
tensor and, in training, each filler token is swapped for another filler token with probability
``swap`` (plugin option, default 0.1), an augmentation that keeps the labels. Batching
(``collate``) pads.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from negev.metrics.regions import pointing_accuracy
from negev.plugins import BadItem, DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.options import option
from negev.plugins.render import evidence_css, item_stem, write_file

__all__ = ["TokenEncoder", "TokensOptions", "TokensPlugin"]

VOCAB = 30
CLASSES = ["alpha", "beta"]
SIGNAL = (1, 2, 5, 7)  # the tokens that decide the labels; the others are filler


@dataclass(frozen=True)
class TokensOptions:
    """The plugin's options (``--set key=value``), checked by the engine."""

    demo_size: int = option(600, "items of the built-in demo data")
    swap: float = option(0.1, "share of filler tokens swapped for others in training")

    def __post_init__(self) -> None:
        if not 0 <= self.swap <= 1:
            raise ValueError(f"plugin option swap must be in [0, 1], got {self.swap}")


class TokenEncoder(RegionEncoder):
    """(B, L) token ids -> features (B, D, L) and mask (B, L)."""

    def __init__(self, vocab: int = VOCAB, dim: int = 32, out_channels: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, out_channels, kernel_size=3, padding=1)
        self.out_channels = out_channels

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        tokens, mask = inputs["tokens"], inputs["mask"]
        # zero the padding, so that a region's features do not depend on the batch it is in
        embedded = self.embed(tokens) * mask.unsqueeze(2)
        features = torch.relu(self.conv(embedded.transpose(1, 2)))
        return features, mask


class TokensPlugin(ModalityPlugin):
    name = "tokens"
    description = "Integer token sequences (the example plugin of the plugin guide)"
    options_class = TokensOptions
    options = TokensOptions()  # the run's, set by load_state; read by load_item

    def default_config(self) -> dict[str, Any]:
        return {"epochs": 6, "batch_size": 32, "lr": 0.01, "pooling": "maxmin"}

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        if spec is None:
            examples, bad = _demo(self.options_of(config).demo_size, config.get("seed", 0)), []
            classes = CLASSES
        else:
            examples, bad, classes = _read_csv(Path(spec))
        n = len(examples)
        cut1, cut2 = int(0.7 * n), int(0.85 * n)
        splits = DataSplits(
            examples[:cut1], examples[cut1:cut2], examples[cut2:], classes, True, bad
        )
        splits.builtin = spec is None  # the demo's own bad items (none here) would be skipped
        return splits

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.options = self.options_of(config)  # nothing learnt from the data: options only

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        return TokenEncoder()

    def load_item(
        self,
        example: Example,
        *,
        train: bool,
        generator: torch.Generator,
        view: dict[str, Any] | None = None,
    ) -> Example:
        """(L,) int64 tokens; in training, filler tokens swapped at random (``swap``)."""
        tokens = torch.tensor(example.inputs, dtype=torch.long)
        if train and self.options.swap > 0:
            filler = torch.tensor([t for t in range(VOCAB) if t not in SIGNAL])
            draws = torch.rand(len(tokens), generator=generator) < self.options.swap
            draws &= ~torch.isin(tokens, torch.tensor(SIGNAL))
            picks = torch.randint(len(filler), (len(tokens),), generator=generator)
            tokens = torch.where(draws, filler[picks], tokens)
        return dataclasses.replace(example, inputs=tokens)

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """``{"tokens": (B, L) int64 zero-padded, "mask": (B, L) bool}``."""
        longest = max(len(e.inputs) for e in examples)
        tokens = torch.zeros(len(examples), longest, dtype=torch.long)
        mask = torch.zeros(len(examples), longest, dtype=torch.bool)
        for row, example in enumerate(examples):
            tokens[row, : len(example.inputs)] = torch.as_tensor(example.inputs)
            mask[row, : len(example.inputs)] = True
        return {"tokens": tokens, "mask": mask}

    def read_input(self, text: str) -> Example:
        return Example(text, _parse_tokens(text), ())

    def region_names(self, example: Example) -> list[str]:
        return [f"#{i}:{t}" for i, t in enumerate(example.inputs)]

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        rows = []
        for c, name in enumerate(classes):
            values = maps[c, : len(example.inputs)]
            scale = float(values.abs().max()) or 1.0
            cells = "".join(
                f'<span style="background:{evidence_css(float(v) / scale)};padding:2px">{t}</span> '
                for t, v in zip(example.inputs, values, strict=True)
            )
            rows.append(f"<p><b>{html.escape(name)}</b> ({float(scores[c]):+.2f}): {cells}</p>")
        page = "<html><body>" + "\n".join(rows) + "</body></html>\n"
        name = f"{item_stem(example.name)}.html"
        return [write_file(out_dir, name, lambda path: path.write_text(page, encoding="utf-8"))]

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """Pointing: the top region of a present class lies on its ground-truth evidence."""
        regions, truth = [], []
        for example, item_maps in zip(examples, maps, strict=True):
            for c, positions in example.truth.get("evidence", {}).items():
                if c in example.labels and positions:
                    regions.append(item_maps[c, : len(example.inputs)])
                    truth.append(torch.tensor([i in positions for i in range(len(example.inputs))]))
        return {"pointing": pointing_accuracy(regions, truth)} if regions else {}


def _demo(size: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for index in range(size):
        filler = [t for t in range(VOCAB) if t not in (1, 2, 5, 7)]
        tokens = [rng.choice(filler) for _ in range(rng.randint(12, 30))]
        if rng.random() < 0.5:
            at = rng.randrange(len(tokens) - 1)
            tokens[at : at + 2] = [1, 2]
        if rng.random() < 0.35:
            tokens[rng.randrange(len(tokens))] = 7
        if rng.random() < 0.5:
            tokens[rng.randrange(len(tokens))] = 5
        bigram = [i for i in range(len(tokens) - 1) if tokens[i : i + 2] == [1, 2]]
        labels = []
        if bigram and 7 not in tokens:
            labels.append(0)
        if 5 in tokens:
            labels.append(1)
        evidence = {
            0: {p for i in bigram for p in (i, i + 1)},
            1: {i for i, t in enumerate(tokens) if t == 5},
        }
        examples.append(Example(f"demo-{index}", tokens, tuple(labels), {"evidence": evidence}))
    return examples


def _read_csv(path: Path) -> tuple[list[Example], list[BadItem], list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    rows, bad = [], []
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames is None or not {"tokens", "labels"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must have the columns 'tokens' and 'labels'")
        for line, row in enumerate(reader, start=2):
            name = f"{path.name}:{line}"
            try:
                tokens = _parse_tokens(row["tokens"] or "")
            except ValueError as exc:
                bad.append(BadItem(name, str(exc)))
                continue
            labels = [label for label in (row["labels"] or "").split("|") if label]
            rows.append((name, tokens, labels))
    classes = sorted({label for _, _, labels in rows for label in labels})
    examples = [
        Example(name, tokens, tuple(classes.index(label) for label in labels))
        for name, tokens, labels in rows
    ]
    return examples, bad, classes


def _parse_tokens(text: str) -> list[int]:
    parts = text.split()
    if not parts:
        raise ValueError("empty token sequence")
    tokens = []
    for part in parts:
        if not part.isdigit() or int(part) >= VOCAB:
            raise ValueError(f"token {part!r} is not an integer in [0, {VOCAB})")
        tokens.append(int(part))
    return tokens
