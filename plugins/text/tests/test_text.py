"""The text plugin: tokens and spans, readers, the demo's ground truth, both encoders, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from negev.nn import EvidenceHead, create_pool
from negev.plugins import Example, get_plugin
from negev_cli.app import app
from negev_text import data
from negev_text.encoders import ConvWindowEncoder, HashedNgramEncoder, TransformerWindowEncoder
from negev_text.options import TextOptions
from negev_text.tokens import Tokens, build_vocabulary


def test_tokens_keep_character_offsets():
    tokens = Tokens.of("Not good, but cheap!")
    assert tokens.words == ["not", "good", ",", "but", "cheap", "!"]
    assert [tokens.text[s:e] for s, e in zip(tokens.starts, tokens.ends, strict=True)] == [
        "Not", "good", ",", "but", "cheap", "!",
    ]  # fmt: skip
    assert tokens.covering(4, 13) == {1, 2, 3}
    assert build_vocabulary([["b", "a", "b"]])[:4] == ["<pad>", "<unk>", "b", "a"]


def test_demo_spans_point_at_the_deciding_words():
    negations = {word for pair in data._NEGATIONS for word in pair}
    for example in data.demo(400, seed=0):
        text = example.inputs
        positive = [text[s:e] for s, e in example.truth["positive_spans"]]
        negative = [text[s:e] for s, e in example.truth["negative_spans"]]
        assert all(words in data._PRAISE for words in positive)
        assert all(words in data._COMPLAINT or words in negations for words in negative)
        # positive exactly when there is praise and no negative evidence
        assert example.labels == ((0,) if positive and not negative else ())


def test_demo_holds_no_cue_but_the_evidence():
    examples = data.demo(4000, seed=1)
    positive = [e for e in examples if e.labels]
    assert 0.3 < len(positive) / len(examples) < 0.45
    negative_with_praise = [e for e in examples if not e.labels and e.truth["positive_spans"]]
    # the words around the evidence occur in positive reviews as well
    for cue in ("but", "would", "say", "found", "felt", *data._FILLER):

        def rate(group, cue=cue):
            return sum(bool(re.search(rf"\b{cue}\b", e.inputs)) for e in group) / len(group)

        assert rate(positive) > 0.03, cue
        assert rate(positive) > 0.3 * rate(negative_with_praise), cue


def test_evidence_metrics_against_hand_computed_values():
    plugin = get_plugin("text")
    plugin.load_state({}, {"plugin": {"widths": "1,2"}})
    text = "a b c d"  # windows: a b c d | ab bc cd
    maps = torch.tensor([[0.0, -4.0, 2.0, 0.0, 0.0, -2.0, 0.0, 0.0]])
    # token evidence: each window's score spread over its tokens
    assert plugin.token_evidence(4, maps[0]).tolist() == [0.0, -5.0, 1.0, 0.0]
    first = Example("x", text, (), {"negative_spans": [(4, 5)], "positive_spans": [(2, 3)]})
    # negative ranking: b (-5) first, then a = d (0), c last; truth c -> precision 1/4 at recall 1
    second = Example("y", "a b c d", (), {"negative_spans": [(2, 3)]})
    metrics = plugin.evidence_metrics([first, second], [maps, maps], ["positive"], multilabel=True)
    assert metrics["negative_token_auprc"] == pytest.approx((0.25 + 1.0) / 2)
    assert metrics["negative_token_f1"] == pytest.approx((0.0 + 1.0) / 2)
    # pooled: b, b (one true) then a, a, d, d then c, c (one true)
    pooled = (1 / 2 + 2 / 8) / 2
    assert metrics["negative_token_auprc_pooled"] == pytest.approx(pooled)
    # positive: c (+1) is ranked first but the truth is b, ranked last: precision 1/4
    assert metrics["positive_token_auprc"] == pytest.approx(0.25)


def test_reader_reports_bad_lines(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(
        b"text,label,negative_spans\n"
        b"great food,pos,\n"
        b",neg,\n"
        b"not good,neg,0:3\n"
        b"bad \xff bytes,neg,\n"
        b"fine,maybe,\n"
        b"ok,pos,5:9\n"
    )
    rows, bad, classes, multilabel = data.read(path, TextOptions(classes="neg,pos"))
    examples = [e for _, e in rows]
    reasons = {item.name: item.reason for item in bad}
    assert "empty text" in reasons["reviews.csv:3"]
    assert "not UTF-8" in reasons["reviews.csv:5"]
    assert "unknown label 'maybe'" in reasons["reviews.csv:6"]
    assert "outside the text" in reasons["reviews.csv:7"]
    assert [e.name for e in examples] == ["reviews.csv:2", "reviews.csv:4"]
    assert examples[1].truth["negative_spans"] == [(0, 3)] and not multilabel

    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text('{"text": "a b", "label": ["x", "y"]}\n{"text": "c", "label": "y"}\n{oops\n')
    rows, bad, classes, multilabel = data.read(jsonl, TextOptions())
    examples = [e for _, e in rows]
    assert multilabel and classes == ["x", "y"] and examples[0].labels == (0, 1)
    assert bad[0].name == "tags.jsonl:3" and "not JSON" in bad[0].reason


def test_json_labels_are_read_as_their_values(tmp_path):
    """0 and false are labels, not missing ones; 1 and 1.0 are one class; null is no label."""
    path = tmp_path / "t.jsonl"
    lines = [{"text": "a", "label": 0}, {"text": "b", "label": 1.0}, {"text": "c", "label": 1},
             {"text": "d", "label": False}, {"text": "e", "label": None}]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows, bad, classes, _ = data.read(path, TextOptions())
    assert classes == ["0", "1", "false"]
    assert [e.labels for _, e in rows] == [(0,), (1,), (1,), (2,)]
    assert [(b.name, b.reason) for b in bad] == [("t.jsonl:5", "no label (column 'label')")]


def test_a_json_key_given_twice_and_a_text_that_is_not_text_are_named(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": 0, "label": 1}\n{"text": 12345, "label": 1}\n'
                    '{"text": "fine", "label": 1}\n')  # fmt: skip
    rows, bad, _, _ = data.read(path, TextOptions())
    assert [(b.name, b.reason) for b in bad] == [
        ("t.jsonl:1", "unusable JSON: key(s) 'label' given more than once"),
        ("t.jsonl:2", "the text (column 'text') is a number"),
    ]
    assert len(rows) == 1


def test_given_classes_lose_spaces(tmp_path):
    """Sorted as found ones are: a run saved with classes=pos,neg holds ['neg', 'pos']."""
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,1\nbad,0\n")
    _, bad, classes, _ = data.read(path, TextOptions(classes="1, 0"))
    assert classes == ["0", "1"] and bad == []


def test_a_named_split_column_that_is_not_there_is_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,1\nbad,0\n")
    with pytest.raises(ValueError, match=r"t.csv: no split column 'fold' \(columns: label, text"):
        data.read(path, TextOptions(split_column="fold"))


def test_max_chars_rules_csv_texts_as_jsonl_ones(tmp_path):
    path = tmp_path / "t.csv"
    long = "word " * 30_000  # 150,000 characters: over the CSV reader's own field limit
    path.write_text(f"text,label\n{long},1\nshort,0\n")
    _, bad, _, _ = data.read(path, TextOptions())
    assert "over the limit of max_chars=131072 (a plugin option)" in bad[0].reason
    rows, bad, _, _ = data.read(path, TextOptions(max_chars=200_000))
    assert bad == [] and len(rows) == 2


def test_conv_windows_mask_what_does_not_fit():
    encoder = ConvWindowEncoder(vocabulary=10, widths=(1, 3), dim=4, hidden=5)
    features, mask = encoder({"ids": torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]]),
                              "lengths": torch.tensor([4, 2])})  # fmt: skip
    assert features.shape == (2, 5, 8)
    assert mask.tolist() == [
        [True, True, True, True, True, True, False, False],
        [True, True, False, False, False, False, False, False],
    ]


@pytest.fixture
def tiny_bert(tmp_path):
    """A randomly initialised BERT and its tokenizer, saved locally: no network."""
    transformers = pytest.importorskip("transformers")
    words = ["the", "food", "was", "good", "not", "but", "rude", "staff", "."]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    model_dir = tmp_path / "bert"
    transformers.BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def test_transformer_encoder_from_a_local_directory(tiny_bert):
    encoder = TransformerWindowEncoder(str(tiny_bert), widths=(1, 2))
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    features, mask = encoder({"ids": ids, "lengths": torch.tensor([4, 2])})
    assert features.shape == (2, 16, 8) and mask[1].sum() == 3


def test_transformer_reads_at_most_its_model_length(tiny_bert):
    """With max_tokens unset a text is read whole, except by a transformer, which reads as many
    sub-words as its model has positions (64 here; its tokenizer sets no limit)."""
    options = {"plugin": {"encoder": "transformer", "transformer_path": str(tiny_bert)}}
    plugin = get_plugin("text")
    plugin.load_state({}, options)
    text = " ".join(["the food was good"] * 30)  # 120 sub-words
    batch = plugin.collate([Example("long", text, ())])
    assert batch["ids"].shape[1] == 64 and int(batch["lengths"][0]) == 64
    features, _ = plugin.build_encoder(options)(batch)  # no position past the model's
    assert features.shape[1:] == (16, 128)
    plugin.load_state({}, {"plugin": {"encoder": "hashed"}})
    assert int(plugin.collate([Example("long", text, ())])["lengths"][0]) == 120


def test_cli_with_both_encoders(tmp_path, tiny_bert):
    runner = CliRunner()
    out = tmp_path / "conv"
    small = ["--epochs", "2", "--set", "demo_size=200", "-q"]
    result = runner.invoke(app, ["train", "-m", "text", "--out", str(out), *small])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "evaluation_test.json").read_text())
    assert {"accuracy", "mAP", "negative_token_auprc", "positive_token_auprc_pooled"} <= set(
        metrics
    )
    drawn = tmp_path / "drawn"
    result = runner.invoke(
        app,
        ["explain", "--checkpoint", str(out), "-i", "the food was good", "--out", str(drawn)],
    )
    assert result.exit_code == 0, result.output
    assert "positive: score" in result.output
    assert "<span" in next(drawn.glob("the_food_was_good-*.html")).read_text()

    out = tmp_path / "bert-run"
    args = ["--set", "encoder=transformer", "--set", f"transformer_path={tiny_bert}"]
    result = runner.invoke(app, ["train", "-m", "text", "--out", str(out), *small, *args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["explain", "--checkpoint", str(out), "-i", "the staff was rude"])
    assert result.exit_code == 0, result.output


def test_plugin_errors():
    plugin = get_plugin("text")
    with pytest.raises(ValueError, match="empty text"):
        plugin.read_input("   ")
    plugin.load_data(None, {"seed": 0, "plugin": {"encoder": "transformer", "demo_size": 10}})
    with pytest.raises(ValueError, match="needs transformer_path"):
        plugin.build_encoder({"plugin": {"encoder": "transformer"}})
    for name in ("buckets", "hidden", "max_tokens"):
        with pytest.raises(ValueError, match=f"option {name} must be >= 1, got 0"):
            TextOptions(**{name: 0})


def test_an_embedding_larger_than_memory_names_the_options(monkeypatch):
    """A ``buckets`` the machine cannot hold fails when the options are read, naming them,
    instead of in torch's allocator (or the kernel's OOM killer) once training starts."""
    from negev_text import options

    monkeypatch.setattr(options, "physical_memory", lambda: 2**30)  # a 1 GiB machine
    TextOptions(buckets=2**20, hidden=16)  # 64 MiB: fits
    with pytest.raises(ValueError, match=r"buckets=67108864, hidden=16: .* 4\.0 GiB, more than "
                       r"this machine's 1\.0 GiB"):  # fmt: skip
        TextOptions(buckets=2**26, hidden=16)
    TextOptions(encoder="conv", buckets=2**26)  # only the hashed encoder has the embedding


TEXTS = ["A gripping, well acted film.", "Not good: dull, slow and far too long.", "good good fun",
         "It never quite works, but the cast is good.", "x"]  # fmt: skip


@pytest.mark.parametrize("norm", [True, False])
def test_average_of_hashed_ngrams_is_a_linear_bag_of_ngrams(norm, bucket_counts):
    """GAP over the hashed n-gram windows with a linear head equals, computed apart with
    scikit-learn's n-gram counts, w . (counts / number of windows) + b; with ``tfidf_norm`` (its
    row weights not fitted: all 1) the counts are over their L2 norm per bucket too."""
    plugin = get_plugin("text")
    buckets, widths = 64, (1, 2)  # few buckets: collisions are part of the model
    config = {"plugin": {"encoder": "hashed", "buckets": buckets, "widths": "1,2", "hidden": 4,
                         "tfidf_norm": norm}}  # fmt: skip
    plugin.load_state(plugin.fit_state(None, config), config)
    torch.manual_seed(0)
    encoder = plugin.build_encoder(config)
    assert not encoder.embed.weight.any()  # starts as the constant model; trained weights:
    torch.nn.init.normal_(encoder.embed.weight)
    head = EvidenceHead(4, 3, pool=create_pool("gap"))
    with torch.no_grad():
        batch = plugin.collate([Example(str(i), t, ()) for i, t in enumerate(TEXTS)])
        scores = head(*encoder(batch)).scores.numpy()
    counts = bucket_counts(TEXTS, buckets, ngram_range=widths)  # widths 1, 2: the range 1-2
    per_bucket = (
        encoder.embed.weight.detach().double().numpy()
        @ head.proj.weight.detach().double().numpy().T
    )
    expected = counts @ per_bucket / counts.sum(1, keepdims=True)
    if norm:
        expected /= np.linalg.norm(counts, axis=1, keepdims=True)
    np.testing.assert_allclose(
        scores, expected + head.proj.bias.detach().numpy(), rtol=1e-5, atol=1e-5
    )
    assert HashedNgramEncoder(buckets, widths).out_channels == 32


def test_reader_names_a_missing_column_and_reads_splits(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,label\ngreat,pos\n")
    with pytest.raises(
        ValueError, match=r"no column 'text' \(columns: label, review\).*text_column"
    ):
        data.load(path, TextOptions())
    rows = ["text,label,split"] + [f"text {i},{'ab'[i % 2]},{('train', 'val', 'test')[i % 3]}"
                                   for i in range(9)]  # fmt: skip
    # "all" is no split either (it once crashed the grouping: KeyError 'all')
    path.write_text("\n".join([*rows, "odd one,a,dev", "odd two,b,all"]) + "\n")
    for seed in (0, 3):
        splits = data.load(path, TextOptions(), seed)
        assert [e.name for e in splits.val] == ["reviews.csv:3", "reviews.csv:6", "reviews.csv:9"]
        assert [e.name for e in splits.test] == ["reviews.csv:4", "reviews.csv:7", "reviews.csv:10"]
        assert len(splits.train) == 3
    assert splits.bad[0].name == "reviews.csv:11" and "split 'dev'" in splits.bad[0].reason
    assert splits.bad[1].name == "reviews.csv:12" and "split 'all'" in splits.bad[1].reason
    path.write_text("text,label\n,a\nsome text,\n")  # every line bad: reported, not raised
    splits = data.load(path, TextOptions())
    assert not splits.train + splits.val + splits.test
    assert [b.reason for b in splits.bad] == [
        "empty text (column 'text')",
        "no label (column 'label')",
    ]


@pytest.mark.parametrize(
    ("pooling", "option", "normalised"),
    [("sumwildcat", None, True), ("gapwildcat", None, False), ("gap", None, False),
     ("wildcat", None, False), ("gap", True, True), ("sumwildcat", False, False)],
)  # fmt: skip
def test_tfidf_norm_defaults_to_the_pooling_that_sums_windows(pooling, option, normalised):
    """Unset, the TF-IDF length divides the windows only under sumwildcat: an average of windows
    is length-normalised already."""
    plugin = get_plugin("text")
    config = {"pooling": pooling, "plugin": {"buckets": 64, "tfidf_norm": option}}
    plugin.load_state({}, config)
    assert plugin.build_encoder(config).row_norm is normalised


@pytest.mark.parametrize(
    ("plugin_options", "message"),
    [({"max_tokens": 10}, "2 text(s) longer than max_tokens=10 tokens are truncated"),
     ({"encoder": "transformer"}, "1 text(s) longer than the transformer's longest input, 64 "
                                  "tokens are truncated")],
)  # fmt: skip
def test_reading_counts_the_texts_the_encoder_cuts(tmp_path, tiny_bert, capsys, plugin_options,
                                                   message):  # fmt: skip
    """In the tokens the encoder reads: words (120 and 12 are over 10), or the transformer's
    sub-words (its model has 64 positions: only the 120 sub-words are over)."""
    rows = ["text,label", f"{' '.join(['the food was good'] * 30)},a", "the food was good,b",
            f"{' '.join(['good'] * 12)},a", "bad,b"]  # fmt: skip
    path = tmp_path / "texts.csv"
    path.write_text("\n".join(rows) + "\n")
    config = {"plugin": {**plugin_options, "transformer_path": str(tiny_bert)}}
    get_plugin("text").load_data(str(path), config)
    assert message in " ".join(capsys.readouterr().err.split())


def test_a_compressed_jsonl_file_is_named_as_such(tmp_path):
    import gzip

    path = tmp_path / "texts.jsonl"
    path.write_bytes(gzip.compress(b'{"text": "good", "label": "pos"}\n'))
    with pytest.raises(ValueError, match="texts.jsonl: gzip-compressed, not UTF-8 text"):
        data.read(path, TextOptions())


def test_an_input_naming_a_txt_file_is_its_text(tmp_path):
    plugin = get_plugin("text")
    plugin.load_state({}, {"plugin": {"max_chars": 30}})
    (tmp_path / "review.txt").write_text("great food and a kind waiter\n")
    example = plugin.read_input(str(tmp_path / "review.txt"))
    assert (example.name, example.inputs) == (
        str(tmp_path / "review.txt"),
        "great food and a kind waiter\n",
    )
    assert plugin.read_input("review.txt").inputs == "review.txt"  # no such file: a literal
    (tmp_path / "long.txt").write_text("x" * 31)
    (tmp_path / "empty.txt").write_text(" \n")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    for name, message in (
        ("long", "31 characters, over the limit of max_chars=30"),
        ("empty", "an empty text"),
        ("latin", r"not UTF-8 \(at byte 3\)"),
    ):
        with pytest.raises(ValueError, match=f"{name}.txt: {message}"):
            plugin.read_input(str(tmp_path / f"{name}.txt"))
