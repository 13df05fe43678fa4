"""The ``text`` modality: regions are token windows (n-grams), evidence maps go onto tokens."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.metrics import average_precision_score
from torch import Tensor

from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import evidence_css, file_stem
from negev_text import data
from negev_text.encoders import ConvWindowEncoder, TransformerWindowEncoder
from negev_text.tokens import UNK, Tokens, build_vocabulary


class TextPlugin(ModalityPlugin):
    """Texts from CSV / JSONL, or the built-in demo (praise, negation, contrast).

    Plugin options (``--set key=value``): ``encoder`` (``conv``, or ``transformer`` with
    ``transformer_path`` = a local directory saved by ``transformers``), ``widths`` (window
    widths, e.g. ``1,2,3``), ``max_tokens``, ``demo_size``, ``evidence_class`` (the class the
    ground-truth spans speak for; default the last), and the reader's options (see
    :func:`negev_text.data.read`).
    """

    name = "text"
    description = "Text: token-window regions, negation and contrast as negative evidence"

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.vocabulary: dict[str, int] = {}
        self.multilabel = False
        self._tokenizer = None

    def default_config(self) -> dict[str, Any]:
        return {
            "epochs": 8,
            "batch_size": 32,
            "lr": 3e-3,
            "pooling": "weldon",
            "kmax": 0.1,
            "alpha": 1.0,
            "plugin": {"encoder": "conv", "widths": "1,2,3", "max_tokens": 64, "demo_size": 6000},
        }

    # -- data ------------------------------------------------------------------------------
    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        self._configure(config.get("plugin", {}))
        seed = int(config.get("seed", 0))
        if spec is None:
            examples, bad = data.demo(int(self.options.get("demo_size", 6000)), seed), []
            splits = DataSplits.shuffled(examples, data.DEMO_CLASSES, True, bad, seed)
            splits.builtin = True
        else:
            examples, bad, classes, multilabel = data.read(Path(spec), self.options)
            if not examples:
                raise ValueError(f"no usable text in {spec}")
            splits = DataSplits.shuffled(examples, classes, multilabel, bad, seed)
        self.multilabel = splits.multilabel
        limit = int(self.options.get("max_tokens", 64))
        longer = sum(len(Tokens.of(e.inputs).words) > limit for e in examples)
        if longer:
            Console(stderr=True).print(
                f"[yellow]{longer} text(s) longer than max_tokens={limit} tokens are truncated"
            )
        return splits

    def fit_state(self, splits: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        self._configure(config.get("plugin", {}))
        if self.options.get("encoder", "conv") != "conv":
            return {}
        words = [self._tokens(e.inputs).words for e in splits.train]
        return {"vocabulary": build_vocabulary(words)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vocabulary = {w: i for i, w in enumerate(state.get("vocabulary", []))}

    # -- model -------------------------------------------------------------------------------
    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        self._configure(config.get("plugin", {}))
        kind = self.options.get("encoder", "conv")
        if kind == "conv":
            if not self.vocabulary:
                raise ValueError("the text plugin has no vocabulary: train first (fit_state)")
            return ConvWindowEncoder(len(self.vocabulary), self._widths())
        if kind == "transformer":
            return TransformerWindowEncoder(self._transformer_path(), self._widths())
        raise ValueError(f"plugin option encoder must be 'conv' or 'transformer', got {kind!r}")

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        encoded = [self._ids(e.inputs) for e in examples]
        longest = max(len(ids) for ids in encoded)
        ids = torch.zeros(len(encoded), longest, dtype=torch.long)
        for row, values in enumerate(encoded):
            ids[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        return {"ids": ids, "lengths": torch.tensor([len(v) for v in encoded])}

    def read_input(self, text: str) -> Example:
        if not text.strip():
            raise ValueError("--input is an empty text")
        return Example(text[:40], text, ())

    # -- evidence ----------------------------------------------------------------------------
    def region_names(self, example: Example) -> list[str | None]:
        tokens = self._tokens(example.inputs)
        n = len(tokens.words)
        return [
            " ".join(tokens.words[s : s + w]) if s + w <= n else None
            for w in self._widths()
            for s in range(n)
        ]

    def token_evidence(self, n: int, region_map: Tensor) -> np.ndarray:
        """Signed evidence per token of a text of ``n`` tokens: every valid window's score spread
        evenly over its tokens and summed (> 0 speaks for the class, < 0 against it).

        Args:
            region_map: (len(widths) * L,) one class's window scores, L >= n.

        Returns:
            (n,) float.
        """
        widths = self._widths()
        longest = region_map.numel() // len(widths)
        scores = region_map.reshape(len(widths), longest).numpy()
        evidence = np.zeros(n)
        for w_index, width in enumerate(widths):
            for start in range(0, n - width + 1):
                evidence[start : start + width] += scores[w_index, start] / width
        return evidence

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """An HTML page: per class, each token shaded by its evidence (green for, red against)."""
        tokens = self._tokens(example.inputs)
        rows = []
        for c, name in enumerate(classes):
            weight = self.token_evidence(len(tokens.words), maps[c])
            scale = float(np.abs(weight).max()) if len(weight) else 1.0
            cells = "".join(
                f'<span title="{w:+.2f}" style="background:{evidence_css(w / (scale or 1.0))};'
                f'padding:1px 2px;margin:1px">{html.escape(tokens.text[s:e])}</span>'
                for s, e, w in zip(tokens.starts, tokens.ends, weight, strict=True)
            )
            rows.append(f"<p><b>{html.escape(name)}</b> {float(scores[c]):+.2f}<br>{cells}</p>")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{file_stem(example.name, 'text')}.html"
        path.write_text(
            '<html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">'
            + "\n".join(rows)
            + "</body></html>\n"
        )
        return [path]

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """The rationale metrics of ERASER (DeYoung et al., 2020) for the positive and the
        negative evidence of ``evidence_class``, on the texts that have such ground-truth spans.
        Tokens are ranked by :meth:`token_evidence` (negative evidence: most negative first).

        - ``{sign}_token_auprc``: per text, the average precision of that ranking against the
          tokens the spans cover, averaged over the texts (ERASER's soft-score AUPRC; sklearn's
          step-wise average precision where ERASER integrates the curve by trapezoids);
        - ``{sign}_token_auprc_pooled``: one ranking of all those texts' tokens at once (one
          threshold for every text, so the evidence must also be on one scale across texts);
        - ``{sign}_token_f1``: per text, the share of true tokens among its top-k tokens with k
          the number of true tokens (precision = recall = F1), averaged.

        With single-label data the classes compete in a softmax, so a model may hold the evidence
        against a class in the other classes' maps: the map scored is then the class's map minus
        the mean of the others (the logit margin, region by region)."""
        target = self.options.get("evidence_class", classes[-1])
        if target not in classes:
            return {}
        c = classes.index(target)
        if not self.multilabel and len(classes) > 1:
            others = [k for k in range(len(classes)) if k != c]
            maps = [torch.cat([m, m[c : c + 1] - m[others].mean(0, keepdim=True)]) for m in maps]
            c = len(classes)
        found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"positive": [], "negative": []}
        for example, item in zip(examples, maps, strict=True):
            tokens = self._tokens(example.inputs)
            evidence = self.token_evidence(len(tokens.words), item[c])
            for sign, values in (("positive", evidence), ("negative", -evidence)):
                spans = example.truth.get(f"{sign}_spans") or []
                truth = set().union(*(tokens.covering(s, e) for s, e in spans)) if spans else set()
                if truth:
                    found[sign].append((np.isin(np.arange(len(values)), list(truth)), values))
        metrics = {}
        for sign, texts in found.items():
            if not texts:
                continue
            metrics[f"{sign}_token_auprc"] = float(
                np.mean([average_precision_score(truth, values) for truth, values in texts])
            )
            truths, values = zip(*texts, strict=True)
            metrics[f"{sign}_token_auprc_pooled"] = float(
                average_precision_score(np.concatenate(truths), np.concatenate(values))
            )
            metrics[f"{sign}_token_f1"] = float(  # precision = recall at k = the true tokens
                np.mean([t[np.argsort(-v)[: t.sum()]].mean() for t, v in texts])
            )
        return metrics

    # -- helpers -----------------------------------------------------------------------------
    def _configure(self, options: dict[str, Any]) -> None:
        self.options = dict(options)

    def _widths(self) -> tuple[int, ...]:
        raw = self.options.get("widths", "1,2,3")
        widths = tuple(int(w) for w in str(raw).split(",") if w.strip())
        if not widths or min(widths) < 1:
            raise ValueError(f"plugin option widths must be positive integers, got {raw!r}")
        return widths

    def _transformer_path(self) -> str:
        path = self.options.get("transformer_path")
        if not path or not Path(path).is_dir():
            raise ValueError(
                f"encoder=transformer needs transformer_path, a local model directory; got {path!r}"
            )
        return str(path)

    def _tokens(self, text: str) -> Tokens:
        limit = int(self.options.get("max_tokens", 64))
        if self.options.get("encoder", "conv") != "transformer":
            return Tokens.of(text, limit)
        encoded = self._hf_tokenizer()(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
            max_length=limit,
        )  # fmt: skip
        offsets = encoded["offset_mapping"]
        return Tokens(text, [text[s:e].lower() for s, e in offsets], [s for s, _ in offsets],
                      [e for _, e in offsets])  # fmt: skip

    def _ids(self, text: str) -> list[int]:
        if self.options.get("encoder", "conv") == "transformer":
            limit = int(self.options.get("max_tokens", 64))
            return self._hf_tokenizer()(
                text, add_special_tokens=False, truncation=True, max_length=limit
            )["input_ids"] or [0]
        unknown = self.vocabulary.get(UNK, 1)
        return [self.vocabulary.get(w, unknown) for w in self._tokens(text).words] or [unknown]

    def _hf_tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                self._transformer_path(), local_files_only=True, trust_remote_code=False
            )
        return self._tokenizer
