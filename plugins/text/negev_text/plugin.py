"""The ``text`` modality: regions are token windows (n-grams), evidence maps go onto tokens."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.metrics import average_precision_score
from torch import Tensor

from negev.inference import ItemPrediction
from negev.inference.outputs import save_region_map
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import evidence_css, item_stem, write_file
from negev_text import data
from negev_text.encoders import ConvWindowEncoder, HashedNgramEncoder, TransformerWindowEncoder
from negev_text.eraser import faithfulness, iou_f1, top_k_spans
from negev_text.options import TextOptions
from negev_text.tokens import UNK, Tokens, build_vocabulary, hashed_ngrams


class TextPlugin(ModalityPlugin):
    """Texts from CSV / JSONL, or the built-in demo (praise, negation, contrast).

    Plugin options: :class:`~negev_text.options.TextOptions` (``negev plugins --options
    text``); ``transformer_path`` is a local directory saved by ``transformers``.
    """

    name = "text"
    description = "Text: token-window regions, negation and contrast as negative evidence"
    search_encoders = ("hashed", "conv")  # what `negev tune` tries
    options_class = TextOptions

    def __init__(self) -> None:
        self.load_state({})

    def default_config(self) -> dict[str, Any]:
        # Windows are hashed n-grams (widths 1-2). sumwildcat = a bias + the SUM of the window
        # scores, each over its text's TF-IDF length (option tfidf_norm: a linear model on
        # L2-normalised TF-IDF, the practitioner's baseline) + a learned gate (0 at first) times
        # WILDCAT (top and bottom quarter of the windows). The engine fits the linear term first
        # (logistic regression on the TF-IDF, C on validation: option warm_start) and keeps it
        # as epoch 0, so training starts at the TF-IDF baseline and leaves it only when
        # validation says so: as the molecule plugin's default. The L2 norm: validation
        # accuracy 0.817 vs 0.786 on idf-weighted counts on the debates, 0.779 vs 0.778 on
        # Rotten Tomatoes (benchmarks/results/text_poolings*.md, session 13). GAP (the average,
        # trained from zeros) was level on Rotten Tomatoes' validation (0.779 vs sumwildcat 0.779,
        # TF-IDF 0.780) but far behind on the 560 training texts of the 2016 debates (0.722 vs
        # 0.817, TF-IDF 0.803): from zeros, 4 epochs do not reach the baseline on a small set.
        # Few epochs: the best validation epoch came first or second.
        return {
            "epochs": 4,
            "batch_size": 32,
            "lr": 1e-2,
            "weight_decay": 1e-2,
            "pooling": "sumwildcat",
            "kmax": 0.25,
            "kmin": 0.25,
            "alpha": 1.0,
        }

    # -- data ------------------------------------------------------------------------------
    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        options = self.options_of(config)
        seed = int(config.get("seed", 0))
        if spec is None:
            examples, bad = data.demo(options.demo_size, seed), []
            splits = DataSplits.shuffled(examples, data.DEMO_CLASSES, True, bad, seed)
            splits.builtin = True
        else:
            splits = data.load(Path(spec), options, seed, config.get("labelled", True))
            examples = splits.train + splits.val + splits.test
        reader = TextPlugin()  # this run's options: its state is loaded after load_data
        reader.load_state({}, config)
        unset = options.encoder == "transformer" and not options.transformer_path  # said later
        longer, limit = (0, None) if unset else reader._truncated([e.inputs for e in examples])
        if longer:
            why = (f"max_tokens={limit}" if options.max_tokens is not None
                   else f"the transformer's longest input, {limit}")  # fmt: skip
            Console(stderr=True).print(
                f"[yellow]{longer} text(s) longer than {why} tokens are truncated"
            )
        return splits

    def fit_state(self, splits: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        options = self.options_of(config)
        if options.encoder != "conv":
            return {}
        words = [Tokens.of(e.inputs, options.max_tokens).words for e in splits.train]
        return {"vocabulary": build_vocabulary(words)}

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        """The run's options and vocabulary, which the config-less hooks read."""
        self.options = self.options_of(config)
        self.vocabulary = {w: i for i, w in enumerate(state.get("vocabulary", []))}
        self._tokenizer = None  # of options.transformer_path, loaded when first needed
        self._limit: int | None = None  # the transformer's longest input (_max_length)

    # -- model -------------------------------------------------------------------------------
    def warm_start(self, config: dict[str, Any]) -> bool:
        """The hashed encoder's linear path is fitted before training (option ``warm_start``;
        the engine does so under a pooling with a linear term)."""
        options = self.options_of(config)
        return options.warm_start and options.encoder == "hashed"

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        options = self.options_of(config)
        if options.encoder == "hashed":
            norm = options.tfidf_norm
            if norm is None:  # a sum of windows grows with the text; an average does not
                norm = config.get("pooling") == "sumwildcat"
            return HashedNgramEncoder(options.buckets, options.widths, options.hidden, norm)
        if options.encoder == "conv":
            if not self.vocabulary:
                raise ValueError("the text plugin has no vocabulary: train first (fit_state)")
            return ConvWindowEncoder(len(self.vocabulary), options.widths)
        return TransformerWindowEncoder(_transformer_path(options), options.widths)

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        if self.options.encoder == "hashed":
            return self._collate_ngrams([self._tokens(e.inputs).words for e in examples])
        encoded = [self._ids(e.inputs) for e in examples]
        longest = max(len(ids) for ids in encoded)
        ids = torch.zeros(len(encoded), longest, dtype=torch.long)
        for row, values in enumerate(encoded):
            ids[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        return {"ids": ids, "lengths": torch.tensor([len(v) for v in encoded])}

    def read_input(self, text: str) -> Example:
        """A literal text, or the text of a ``.txt`` file it names (UTF-8, at most the option
        ``max_chars`` characters), named by its path."""
        if Path(text).suffix.lower() == ".txt" and os.path.isfile(text):
            return self._text_file(Path(text))
        if not text.strip():
            raise ValueError("--input is an empty text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes the command line could not decode
            raise ValueError(f"--input {text[:40]!r}... is not UTF-8 (at {exc.start})") from None
        return Example(text[:40], text, ())

    def _text_file(self, path: Path) -> Example:
        limit = self.options.max_chars
        try:
            if path.stat().st_size > 4 * limit + 3:  # more characters than max_chars for sure
                raise ValueError(f"{path}: over the limit of max_chars={limit} (a plugin option)")
            text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 (at byte {exc.start})") from None
        except OSError as exc:
            raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
        if not text.strip():
            raise ValueError(f"{path}: an empty text")
        if len(text) > limit:
            raise ValueError(
                f"{path}: {len(text)} characters, over the limit of max_chars={limit} (a plugin "
                "option)"
            )
        return Example(str(path), text, ())

    # -- evidence ----------------------------------------------------------------------------
    def region_names(self, example: Example) -> list[str | None]:
        tokens = self._tokens(example.inputs)
        n = len(tokens.words)
        return [
            " ".join(tokens.words[s : s + w]) if s + w <= n else None
            for w in self.options.widths
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
        widths = self.options.widths
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
                f'<span title="{w:+.3g}" style="background:{evidence_css(w / (scale or 1.0))};'
                f'padding:1px 2px;margin:1px">{html.escape(tokens.text[s:e])}</span>'
                for s, e, w in zip(tokens.starts, tokens.ends, weight, strict=True)
            )
            rows.append(f"<p><b>{html.escape(name)}</b> {float(scores[c]):+.2f}<br>{cells}</p>")
        page = (
            '<html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">'
            + "\n".join(rows)
            + "</body></html>\n"
        ).encode("utf-8", "backslashreplace")
        name = f"{item_stem(example.name, key=example.inputs)}.html"
        return [write_file(out_dir, name, lambda path: path.write_bytes(page))]

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """``maps/<id>.npy`` (C, windows) per text, and ``tokens.jsonl``, one line per text:
        ``{"id", "item", "tokens": [...], "spans": [[start, end], ...] (characters),
        "scores": {class: [evidence per token]}}`` (:meth:`token_evidence`)."""
        path = Path(out_dir) / "tokens.jsonl"
        written = []
        with open(path, "w") as file:
            for prediction in predictions:
                written.append(save_region_map(prediction, out_dir))
                tokens = self._tokens(prediction.example.inputs)
                n = len(tokens.words)
                line = {
                    "id": prediction.id,
                    "item": prediction.example.name,
                    "tokens": list(tokens.words),
                    "spans": [[s, e] for s, e in zip(tokens.starts, tokens.ends, strict=True)],
                    "scores": {
                        name: [round(float(v), 6) for v in self.token_evidence(n, maps)]
                        for name, maps in zip(classes, prediction.maps, strict=True)
                    },
                }
                file.write(json.dumps(line) + "\n")
        return [path, *written]

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
        model: torch.nn.Module | None = None,
        multilabel: bool = True,
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
          the number of true tokens (precision = recall = F1), averaged;
        - ``{sign}_iou_f1``: ERASER's IOU F1 (:func:`negev_text.eraser.iou_f1`) of the runs of
          each text's top-k tokens, k the mean number of true tokens over the texts, against the
          true spans;
        - given the ``model``, ``comprehensiveness`` and ``sufficiency`` of the evidence
          (:meth:`faithfulness`), on every text.

        With single-label data the classes compete in a softmax, so a model may hold the evidence
        against a class in the other classes' maps: the map scored is then the class's map minus
        the mean of the others (the logit margin, region by region); ``multilabel``: whether
        the model was trained on multi-label data (the engine passes it)."""
        target = self.options.evidence_class or classes[-1]
        if target not in classes:
            return {}
        c = classes.index(target)
        if not multilabel and len(classes) > 1:
            others = [k for k in range(len(classes)) if k != c]
            maps = [torch.cat([m, m[c : c + 1] - m[others].mean(0, keepdim=True)]) for m in maps]
            c = len(classes)
        found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"positive": [], "negative": []}
        true_spans: dict[str, list[list[tuple[int, int]]]] = {"positive": [], "negative": []}
        for example, item in zip(examples, maps, strict=True):
            tokens = self._tokens(example.inputs)
            evidence = self.token_evidence(len(tokens.words), item[c])
            for sign, values in (("positive", evidence), ("negative", -evidence)):
                spans = example.truth.get(f"{sign}_spans") or []
                covered = [tokens.covering(s, e) for s, e in spans]
                truth = set().union(*covered)
                if truth:
                    found[sign].append((np.isin(np.arange(len(values)), list(truth)), values))
                    true_spans[sign].append([(min(t), max(t) + 1) for t in covered if t])
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
            k = max(1, round(float(np.mean([t.sum() for t, _ in texts]))))
            predicted = [top_k_spans(v, k) for _, v in texts]
            metrics[f"{sign}_iou_f1"] = iou_f1(true_spans[sign], predicted)
        if model is not None and examples:
            metrics.update(self.faithfulness(model, examples, maps, classes, c, multilabel))
        return metrics

    def faithfulness(
        self,
        model: torch.nn.Module,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        c: int,
        multilabel: bool = True,
        batch_size: int = 64,
    ) -> dict[str, float]:
        """ERASER's comprehensiveness and sufficiency (:func:`negev_text.eraser.faithfulness`)
        of the token evidence of map ``c`` (a class, or the margin map :meth:`evidence_metrics`
        appends) for the model's decision on each text: present or absent for multi-label data
        (probability sigmoid(+-score of class c), evidence +-the map), the argmax class for
        single-label data (its softmax probability, its margin map's evidence). Texts without
        tokens are rebuilt from the kept tokens joined by spaces and scored again by ``model``.
        """
        from negev.engine import predict

        device = next(model.parameters()).device
        label = c if c < len(classes) else len(classes) - 1  # the margin map is appended
        texts = [self._tokens(e.inputs) for e in examples]

        def run(items: list[tuple[int, list[int]]]) -> Tensor:
            rebuilt = [
                Example(examples[i].name, " ".join(texts[i].text[texts[i].starts[t] :
                        texts[i].ends[t]] for t in kept), ())
                for i, kept in items
            ]  # fmt: skip
            return predict(model, self, rebuilt, batch_size, device)[0]

        full = run([(i, list(range(len(t.words)))) for i, t in enumerate(texts)])
        if multilabel or len(classes) == 1:
            if c >= len(classes):  # one class in a softmax cannot be undecided
                return {}
            sign = torch.where(full[:, label] > 0, 1.0, -1.0)
            evidence = [s * self.token_evidence(len(t.words), m[c]) for s, t, m in
                        zip(sign.tolist(), texts, maps, strict=True)]  # fmt: skip

            def probability(items: list[tuple[int, list[int]]]) -> np.ndarray:
                logits = run(items)[:, label] * sign[[i for i, _ in items]]
                return torch.sigmoid(logits).numpy()
        else:
            decision = full.argmax(1)
            evidence = []
            for t, m, k in zip(texts, maps, decision.tolist(), strict=True):
                others = [j for j in range(len(classes)) if j != k]
                margin = m[k] - m[others].mean(0)
                evidence.append(self.token_evidence(len(t.words), margin))

            def probability(items: list[tuple[int, list[int]]]) -> np.ndarray:
                chosen = decision[[i for i, _ in items]]
                p = torch.softmax(run(items), dim=1)
                return p.gather(1, chosen[:, None])[:, 0].numpy()

        return faithfulness(probability, [len(t.words) for t in texts], evidence)

    # -- helpers -----------------------------------------------------------------------------
    def _collate_ngrams(self, texts: list[list[str]]) -> dict[str, Tensor]:
        """``ngrams`` (B, len(widths) * L) bucket ids in the encoders' window layout and
        ``lengths`` (B,); an empty text counts as one unknown token."""
        texts = [words or ["<unk>"] for words in texts]
        widths, buckets = self.options.widths, self.options.buckets
        longest = max(len(words) for words in texts)
        ngrams = torch.zeros(len(texts), len(widths), longest, dtype=torch.long)
        for row, words in enumerate(texts):
            ids = hashed_ngrams(words, widths, buckets)
            ngrams[row, :, : len(words)] = torch.tensor(ids).view(len(widths), len(words))
        lengths = torch.tensor([len(words) for words in texts])
        return {"ngrams": ngrams.flatten(1), "lengths": lengths}

    def _tokens(self, text: str) -> Tokens:
        limit = self._max_length()
        if self.options.encoder != "transformer":
            return Tokens.of(text, limit)
        encoded = self._hf_tokenizer()(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
            max_length=limit,
        )  # fmt: skip
        offsets = encoded["offset_mapping"]
        return Tokens(text, [text[s:e].lower() for s, e in offsets], [s for s, _ in offsets],
                      [e for _, e in offsets])  # fmt: skip

    def _ids(self, text: str) -> list[int]:
        if self.options.encoder == "transformer":
            return self._hf_tokenizer()(
                text, add_special_tokens=False, truncation=True, max_length=self._max_length()
            )["input_ids"] or [0]
        unknown = self.vocabulary.get(UNK, 1)
        return [self.vocabulary.get(w, unknown) for w in self._tokens(text).words] or [unknown]

    def _truncated(self, texts: list[str]) -> tuple[int, int | None]:
        """How many of ``texts`` are longer than :meth:`_max_length` in the tokens the encoder
        reads (words; a transformer's sub-words), and that length (None: none is cut)."""
        limit = self._max_length()
        if limit is None or not texts:
            return 0, limit
        if self.options.encoder == "transformer":
            ids = self._hf_tokenizer()(texts, add_special_tokens=False, verbose=False)["input_ids"]
            lengths = [len(i) for i in ids]
        else:
            lengths = [len(Tokens.of(text).words) for text in texts]
        return sum(n > limit for n in lengths), limit

    def _max_length(self) -> int | None:
        """Tokens kept per text: ``max_tokens``; unset, the whole text, except for the
        transformer encoder: its model's longest input (the smaller of the tokenizer's
        ``model_max_length`` and the config's ``max_position_embeddings``, 512 when neither is
        set)."""
        if self.options.max_tokens is not None or self.options.encoder != "transformer":
            return self.options.max_tokens
        if self._limit is None:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(
                _transformer_path(self.options), local_files_only=True, trust_remote_code=False
            )
            limits = (self._hf_tokenizer().model_max_length,
                      getattr(config, "max_position_embeddings", None))  # fmt: skip
            known = [int(n) for n in limits if n is not None and n < 1_000_000]  # not a sentinel
            self._limit = min(known, default=512)
        return self._limit

    def _hf_tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                _transformer_path(self.options), local_files_only=True, trust_remote_code=False
            )
        return self._tokenizer


def _transformer_path(options: TextOptions) -> str:
    path = options.transformer_path
    if not path or not Path(path).is_dir():
        raise ValueError(
            f"encoder=transformer needs transformer_path, a local model directory; got {path!r}"
        )
    return path
