"""The training engine: determinism, checkpoints, resuming after SIGKILL, data parallelism."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from negev.engine import RunConfig, load_model, resolve_config, train
from negev.engine.checkpoint import latest_checkpoint
from negev.plugins import BadItem, get_plugin

SMALL = {"modality": "tokens", "epochs": 2, "batch_size": 16, "plugin": {"demo_size": 200}}


def run(tmp_path: Path, name: str, **options) -> Path:
    plugin, config = resolve_config({}, {**SMALL, "out": str(tmp_path / name), **options})
    train(plugin, config, quiet=True)
    return tmp_path / name


def test_same_seed_same_metrics(tmp_path):
    first = run(tmp_path, "a")
    second = run(tmp_path, "b")
    assert (first / "metrics.jsonl").read_text() == (second / "metrics.jsonl").read_text()
    assert len((first / "metrics.jsonl").read_text().splitlines()) == 2
    other = run(tmp_path, "c", seed=1)
    assert (other / "metrics.jsonl").read_text() != (first / "metrics.jsonl").read_text()


@pytest.mark.parametrize("loss", ["ap", "mantra", "bce"])
@pytest.mark.parametrize("pooling", ["wildcat", "lse"])
def test_losses_and_poolings_train(tmp_path, loss, pooling):
    out = run(tmp_path, f"{loss}-{pooling}", loss=loss, pooling=pooling, num_maps=2, epochs=1)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= record["val_mAP"] <= 1 and record["train_loss"] == record["train_loss"]


def test_checkpoint_is_safetensors_and_reloads(tmp_path):
    out = run(tmp_path, "ckpt", keep=1)
    target = latest_checkpoint(out)
    assert target.name == "checkpoint-0002"
    best = json.loads((out / "best.json").read_text())["checkpoint"]
    # checkpoints other than the last `keep` and the best are removed
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-0002", best}
    meta = json.loads((target / "config.json").read_text())
    assert meta["modality"] == "tokens" and meta["plugin_version"] == "0.1.0"
    plugin, config, model, _ = load_model(out)
    weights = load_file(target / "model.safetensors")
    assert torch.equal(model.state_dict()["head.proj.weight"], weights["head.proj.weight"])
    state = torch.load(target / "state.pt", weights_only=True)
    assert state["epoch"] == 1


def _train_command(out: Path, epochs: int, workers: int, resume: bool = False) -> list[str]:
    command = [
        sys.executable, "-m", "negev_cli", "train", "--modality", "tokens", "--out", str(out),
        "--epochs", str(epochs), "--batch-size", "8", "--set", "demo_size=600", "--quiet",
        "--workers", str(workers),
    ]  # fmt: skip
    return command + (["--resume"] if resume else [])


def test_killed_run_resumes_to_the_same_result(tmp_path):
    # the reference loads in-process, the killed and resumed run in 2 worker processes: the
    # batches cannot depend on the workers
    epochs = 6
    reference = tmp_path / "reference"
    subprocess.run(_train_command(reference, epochs, 0), check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_train_command(killed, epochs, 2), stdout=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines = metrics.read_text().splitlines()
    assert 2 <= len(lines) < epochs, "the run must be killed in the middle"
    resumed = _train_command(killed, epochs, 2, resume=True)
    subprocess.run(resumed, check=True, capture_output=True)

    assert metrics.read_text() == (reference / "metrics.jsonl").read_text()
    assert (killed / "final_metrics.json").read_text() == (
        reference / "final_metrics.json"
    ).read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_rank(rank: int, world: int, port: int, options: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    plugin = get_plugin("tokens")
    train(plugin, RunConfig.build(plugin.default_config(), options), quiet=True)
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("loss", ["bce", "ap"])
def test_two_processes_match_one_on_the_same_global_batch(tmp_path, loss):
    # SGD: Adam would blow rounding noise in a zero gradient (the AP loss does not move the
    # bias) up to full-size steps, in one process as in two
    options = {**SMALL, "epochs": 1, "loss": loss, "lr": 0.05, "optimizer": "sgd"}
    single = run(
        tmp_path, "single", **{k: v for k, v in options.items() if k != "modality"}, workers=0
    )
    double = tmp_path / "double"
    ranks = {**options, "out": str(double), "workers": 1 if loss == "bce" else 0}
    mp.spawn(_ddp_rank, args=(2, _free_port(), ranks), nprocs=2)
    one = load_file(latest_checkpoint(single) / "model.safetensors")
    two = load_file(latest_checkpoint(double) / "model.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=1e-4)
    moved = load_file(latest_checkpoint(run(tmp_path, "other", seed=3)) / "model.safetensors")
    assert not torch.allclose(moved["head.proj.weight"], one["head.proj.weight"])


def test_bad_items_of_builtin_demo_data_are_reported_and_skipped(tmp_path, monkeypatch):
    plugin = get_plugin("tokens")
    original = plugin.load_data

    def with_bad(spec, config):
        splits = original(spec, config)
        splits.bad = [BadItem("demo-x", "broken on purpose")]
        return splits

    monkeypatch.setattr(plugin, "load_data", with_bad)
    config = RunConfig.build(plugin.default_config(), {**SMALL, "out": str(tmp_path / "r")})
    train(plugin, config, quiet=True)
    report = json.loads((tmp_path / "r" / "bad_items.json").read_text())
    assert report == [{"item": "demo-x", "reason": "broken on purpose"}]


def test_classification_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    from negev.engine import classification_metrics
    from negev.plugins import Example

    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(40, 3, generator=generator)
    truth = (torch.rand(40, 3, generator=generator) < 0.4).int()
    examples = [Example(str(i), None, tuple(torch.nonzero(row).flatten().tolist()))
                for i, row in enumerate(truth)]  # fmt: skip
    metrics = classification_metrics(scores, examples, 3, multilabel=True)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, (scores > 0).int()))
    assert metrics["mAP"] == pytest.approx(
        sum(average_precision_score(truth[:, c], scores[:, c]) for c in range(3)) / 3
    )
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, scores, average="macro"))
    # a missing label is left out of the decisions that accuracy checks
    wrong = next(i for i in range(40) if ((scores[i] > 0).int() != truth[i]).sum() == 1)
    c = int(torch.nonzero((scores[wrong] > 0).int() != truth[wrong])[0])
    examples[wrong] = Example(str(wrong), None, examples[wrong].labels, unknown=(c,))
    expected = accuracy_score(truth, (scores > 0).int()) + 1 / 40
    assert classification_metrics(scores, examples, 3, True)["accuracy"] == pytest.approx(expected)

    single = classification_metrics(scores, examples, 3, multilabel=False)
    guess, target = scores.argmax(1), truth.argmax(1)
    assert single["accuracy"] == pytest.approx(accuracy_score(target, guess))
    assert single["macro_f1"] == pytest.approx(f1_score(target, guess, average="macro"))


def test_best_checkpoint_is_the_epoch_with_the_best_monitored_value(tmp_path):
    # a large learning rate makes validation mAP go up and down over the epochs
    options = {"epochs": 6, "lr": 0.3, "optimizer": "sgd", "monitor": "roc_auc"}
    plugin, config = resolve_config({}, {**SMALL, **options, "out": str(tmp_path / "r")})
    result = train(plugin, config, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    values = [r["val_roc_auc"] for r in records]
    expected = max(range(len(values)), key=lambda i: (values[i], -i)) + 1  # first of the best
    assert values.index(max(values)) + 1 != len(values), "the last epoch must not be the best"
    assert result.best_epoch == expected and result.best_value == max(values)
    assert result.monitor == "roc_auc" and result.val_metrics["roc_auc"] == max(values)
    assert json.loads((tmp_path / "r" / "best.json").read_text())["epoch"] == expected
    # the kept weights are those of that epoch: they reproduce its validation value
    from negev.engine import classification_metrics, predict
    from negev.engine.trainer import prepare_data

    plugin, config, model, meta = load_model(tmp_path / "r")
    splits = prepare_data(plugin, config, None)
    scores, _ = predict(model, plugin, splits.val, 64, torch.device("cpu"))
    again = classification_metrics(scores, splits.val, 2, True)["roc_auc"]
    assert again == pytest.approx(max(values), abs=1e-6)
    _, _, latest, _ = load_model(tmp_path / "r", which="latest")
    assert not torch.equal(latest.head.proj.weight, model.head.proj.weight)
    # the test metrics are the best model's
    test_scores, _ = predict(model, plugin, splits.test, 64, torch.device("cpu"))
    test = classification_metrics(test_scores, splits.test, 2, True)
    assert result.metrics["mAP"] == pytest.approx(test["mAP"], abs=1e-6)


def test_patience_stops_training_and_evaluate_test_false_never_reads_test(tmp_path, monkeypatch):
    options = {"epochs": 8, "lr": 0.3, "optimizer": "sgd", "patience": 1}
    plugin, config = resolve_config({}, {**SMALL, **options, "out": str(tmp_path / "r")})
    original = plugin.load_data

    def poisoned(spec, config):
        splits = original(spec, config)
        splits.test = [_Poison(e) for e in splits.test]
        return splits

    monkeypatch.setattr(plugin, "load_data", poisoned)
    result = train(plugin, config, quiet=True, evaluate_test=False)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    assert result.metrics == {} and not (tmp_path / "r" / "final_metrics.json").exists()
    assert len(records) == result.best_epoch + 1 < 8  # stopped one epoch after the best


class _Poison:
    """An example whose every attribute access fails: proof that it was never used."""

    def __init__(self, example):
        object.__setattr__(self, "_example", example)

    def __getattr__(self, name):
        raise AssertionError("the test split was read")


def test_a_run_is_not_clobbered_without_overwrite(tmp_path):
    out = run(tmp_path, "r", epochs=1)
    before = (out / "metrics.jsonl").read_text()
    plugin, config = resolve_config({}, {**SMALL, "out": str(out), "seed": 5})
    with pytest.raises(ValueError, match="already holds a run.*--resume.*--overwrite"):
        train(plugin, config, quiet=True)
    assert (out / "metrics.jsonl").read_text() == before
    (out / "notes.txt").write_text("mine")
    train(plugin, config, quiet=True, overwrite=True)
    assert (out / "metrics.jsonl").read_text() != before
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are cleared
