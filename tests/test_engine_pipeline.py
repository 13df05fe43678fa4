"""The engine's input pipeline, precision, recipe and evaluation API: worker processes,
augmentation only in training, bad files named, bf16 on the CPU, gradient accumulation, learning
rates per part, evaluating a whole external file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from negev.engine import DataError, evaluate, load_model, resolve_config, train
from negev.engine.checkpoint import find_checkpoint
from negev.engine.data import ItemError
from negev.engine.recipe import build_optimizer, build_scheduler, parameter_groups
from negev.plugins import get_plugin
from negev_cli.app import app

SMALL = {"modality": "tokens", "epochs": 2, "batch_size": 16, "plugin": {"demo_size": 200}}


def _train(tmp_path: Path, name: str, plugin=None, **options):
    base, config = resolve_config({}, {**SMALL, "out": str(tmp_path / name), **options})
    return train(plugin or base, config, quiet=True)


def _weights(run: Path, which: str = "latest") -> dict[str, torch.Tensor]:
    return load_file(find_checkpoint(run, which) / "model.safetensors")


def test_training_loads_train_items_augmented_and_evaluation_items_plain(tmp_path, monkeypatch):
    plugin = get_plugin("tokens")
    seen: dict[str, set[bool]] = {}
    original = type(plugin).load_item

    def spy(self, example, *, train, generator, view=None):
        seen.setdefault(example.name, set()).add(train)
        return original(self, example, train=train, generator=generator, view=view)

    monkeypatch.setattr(type(plugin), "load_item", spy)
    _train(tmp_path, "r", plugin, workers=0)
    data = plugin.load_data(None, resolve_config({}, SMALL)[1].to_dict())
    assert all(seen[e.name] == {True} for e in data.train)
    assert all(seen[e.name] == {False} for e in data.val + data.test)


def _write_voc(root: Path, count: int, size=(96, 72)) -> list[str]:
    """A tiny VOC folder of ``count`` JPEGs; ids 0-3 val, 4-7 test, the rest train."""
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"{i:04d}" for i in range(count)]
    for i, image_id in enumerate(ids):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg")
        name = ("cat", "dog")[i % 2]
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><object><name>{name}</name><bndbox><xmin>2</xmin><ymin>2</ymin>"
            "<xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>"
        )
    main = root / "ImageSets" / "Main"
    (main / "val.txt").write_text("\n".join(ids[:4]))
    (main / "test.txt").write_text("\n".join(ids[4:8]))
    (main / "train.txt").write_text("\n".join(ids[8:]))
    return ids


def test_image_augmentation_is_seeded_and_absent_in_evaluation(tmp_path):
    from negev_image.images import read_image, to_model_input

    _write_voc(tmp_path / "voc", 12)
    plugin = get_plugin("image")
    _, config = resolve_config({}, {"modality": "image", "data": str(tmp_path / "voc")})
    data = plugin.load_data(config.data, config.to_dict())
    plugin.load_state(plugin.fit_state(data, {"plugin": {"image_size": 64}}))
    assert plugin.options.augment  # on by default for data on disk
    example = data.train[0]

    def load(train: bool, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return plugin.load_item(example, train=train, generator=generator).inputs

    reference = to_model_input(read_image(example.inputs), 64)  # the plain resize
    for seed in range(3):
        assert torch.equal(load(False, seed), reference)
    assert torch.equal(load(True, 1), load(True, 1))
    assert not torch.allclose(load(True, 1), reference, atol=1e-3)
    assert not torch.allclose(load(True, 1), load(True, 2), atol=1e-3)
    # a test-time view: the flipped image
    flipped = plugin.load_item(
        example, train=False, generator=torch.Generator(), view={"size": 64, "flip": True}
    ).inputs
    assert torch.equal(flipped, reference.flip(-1))


def test_audio_augmentation_is_seeded_and_only_in_training():
    from negev_audio.augment import augment_wave

    plugin = get_plugin("audio")
    data = plugin.load_data(None, {"plugin": {"demo_train": 4, "demo_val": 2, "demo_test": 2}})
    plugin.load_state({**plugin.fit_state(data, {"plugin": {}}), "augment": True})
    example = data.train[0]

    def load(train: bool, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return plugin.load_item(example, train=train, generator=generator).inputs.samples

    plain = example.inputs.samples
    assert torch.equal(load(False, 0), plain)
    assert torch.equal(load(True, 3), load(True, 3))
    assert not torch.allclose(load(True, 3), plain) and not torch.allclose(
        load(True, 3), load(True, 4)
    )
    # the masks: a shift alone keeps every sample; masked samples are zero
    shifted = augment_wave(plain, 8000, torch.Generator().manual_seed(5), 0, 0)
    assert torch.allclose(torch.sort(shifted).values, torch.sort(plain).values)
    masked = augment_wave(plain, 8000, torch.Generator().manual_seed(5), 3, 0, width=0.2)
    assert 0 < int((masked == 0).sum()) - int((shifted == 0).sum()) <= 0.6 * len(plain)


def test_a_file_that_breaks_in_a_worker_is_named_in_one_line(tmp_path, monkeypatch):
    ids = _write_voc(tmp_path / "voc", 16)
    plugin = get_plugin("image")
    original = plugin.load_data
    broken = tmp_path / "voc" / "JPEGImages" / f"{ids[9]}.jpg"

    def read_then_break(spec, config):
        splits = original(spec, config)
        broken.write_bytes(broken.read_bytes()[:200])  # truncated after it was checked
        return splits

    monkeypatch.setattr(plugin, "load_data", read_then_break)
    options = {
        "modality": "image", "data": str(tmp_path / "voc"), "out": str(tmp_path / "run"),
        "epochs": 1, "batch_size": 4, "workers": 2,
        "plugin": {"width": 4, "spatial": 2, "image_size": 32},
    }  # fmt: skip
    _, config = resolve_config({}, options)
    with pytest.raises(ItemError) as error:
        train(plugin, config, quiet=True)
    message = str(error.value)
    assert message.startswith(f"{broken}: cannot read image")
    assert "\n" not in message and "worker" not in message.lower()


def test_bf16_on_the_cpu_trains_the_encoder_in_bf16(tmp_path, monkeypatch):
    plugin = get_plugin("tokens")
    dtypes = set()
    build = type(plugin).build_encoder

    def recording(self, config):
        encoder = build(self, config)
        encoder.register_forward_hook(lambda module, args, out: dtypes.add(out[0].dtype))
        return encoder

    monkeypatch.setattr(type(plugin), "build_encoder", recording)
    result = _train(tmp_path, "bf16", plugin, precision="bf16", epochs=3, workers=0, lr=0.01)
    assert torch.bfloat16 in dtypes
    records = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").open()]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert result.metrics["mAP"] > 0.6  # chance is the positive rate, ~0.4


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    options = {"epochs": 1, "optimizer": "sgd", "lr": 0.05, "workers": 0}
    _train(tmp_path, "big", batch_size=16, **options)
    _train(tmp_path, "acc", batch_size=8, accumulate=2, **options)
    _train(tmp_path, "small", batch_size=8, **options)
    big, acc = _weights(tmp_path / "big"), _weights(tmp_path / "acc")
    for name in big:
        torch.testing.assert_close(acc[name], big[name], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(
        _weights(tmp_path / "small")["head.proj.weight"], big["head.proj.weight"]
    )


def test_backbone_lr_multiplier_and_parameter_groups(tmp_path):
    start = tmp_path / "start"
    _train(tmp_path, "start", epochs=1, lr=1e-12, optimizer="sgd", weight_decay=0.0)
    frozen = tmp_path / "frozen"
    _train(tmp_path, "frozen", epochs=1, backbone_lr_mult=0.0, optimizer="sgd", weight_decay=0.0)
    before, after = _weights(start), _weights(frozen)
    for name in before:
        if name.startswith("encoder."):
            torch.testing.assert_close(after[name], before[name], atol=1e-9, rtol=0)
    assert not torch.allclose(after["head.proj.weight"], before["head.proj.weight"])

    plugin, config = resolve_config({}, {**SMALL, "decay_norms_biases": False})
    _, _, model, _ = load_model(frozen)
    groups = parameter_groups(model, config)
    exempt = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in exempt) == name.endswith(".bias"), name


def test_adamw_is_fused_and_is_adamw(tmp_path):
    """The run's AdamW takes the fused kernel on the CPU and its updates are AdamW's, checked
    against a hand-written loop (decoupled weight decay, bias-corrected moments) over the
    parameter groups (weight decay on weights only)."""
    plugin, config = resolve_config(
        {}, {**SMALL, "weight_decay": 0.1, "decay_norms_biases": False, "lr": 0.05}
    )
    _, _, model, _ = load_model(_train(tmp_path, "run", epochs=1, workers=0).run_dir)
    optimizer = build_optimizer(model, config)
    assert all(group["fused"] for group in optimizer.param_groups)
    start = [p.detach().clone() for g in optimizer.param_groups for p in g["params"]]
    generator = torch.Generator().manual_seed(0)
    grads = [[torch.randn(p.shape, generator=generator) for p in start] for _ in range(4)]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for step in grads:
        for parameter, grad in zip(params, step, strict=True):
            parameter.grad = grad.clone()
        optimizer.step()
    decays = [g["weight_decay"] for g in optimizer.param_groups for _ in g["params"]]
    (beta1, beta2), eps, lr = (0.9, 0.999), 1e-8, 0.05
    for i, (value, decay) in enumerate(zip(start, decays, strict=True)):
        w, m, v = value.double(), torch.zeros_like(value).double(), torch.zeros_like(value).double()
        for t, step in enumerate(grads, 1):
            g = step[i].double()
            w = w * (1 - lr * decay)
            m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
            w = w - lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
        torch.testing.assert_close(params[i].detach().double(), w, atol=1e-5, rtol=1e-5)
    assert any(d > 0 for d in decays) and any(d == 0 for d in decays)


def test_warmup_then_cosine_schedule():
    plugin, config = resolve_config({}, {**SMALL, "epochs": 4, "warmup_epochs": 1.5})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=10)
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    for step, rate in enumerate(rates):
        epoch = step // 10
        expected = config.lr * (1 + np.cos(np.pi * epoch / 4)) / 2 * min(1, (step + 1) / 15)
        assert rate == pytest.approx(expected)


def test_evaluate_data_scores_the_whole_external_file(tmp_path):
    out = tmp_path / "run"
    _train(tmp_path, "run", workers=0)
    rows = ["tokens,labels"] + [
        f"{i % 20} 1 2 {(i * 7) % 30},alpha" if i % 3 else f"5 {i % 20} 9,beta" for i in range(37)
    ]
    external = tmp_path / "external.csv"
    external.write_text("\n".join(rows) + "\n")
    result = invoke("evaluate", "--checkpoint", str(out), "--data", str(external))
    assert result.exit_code == 0, result.output
    whole = evaluate(out, data=str(external))
    assert whole.split == "all" and whole.items == 37
    metrics = json.loads((out / "evaluation_all.json").read_text())
    # reference: every row scored on its own, mAP by scikit-learn
    plugin, _, model, meta = load_model(out)
    examples, _, classes = _read(plugin, external)
    with torch.no_grad():
        scores = torch.cat([model(plugin.collate([e])).scores for e in examples])
    truth = np.array([[c in e.labels for c in range(2)] for e in examples])
    expected = np.mean([average_precision_score(truth[:, c], scores[:, c]) for c in range(2)])
    assert len(examples) == 37 and metrics["mAP"] == pytest.approx(expected, abs=1e-6)
    # the run's own data: its test split
    assert evaluate(out).split == "test" and evaluate(out).items == 30


def _read(plugin, path: Path):
    from negev_example_plugin import _read_csv

    return _read_csv(path)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_overwrite_and_which_on_the_command_line(tmp_path):
    out = tmp_path / "run"
    common = ["train", "-m", "tokens", "--out", str(out), "-q", "--epochs", "1", "--workers", "0"]
    assert invoke(*common, "--set", "demo_size=120").exit_code == 0
    refused = invoke(*common, "--set", "demo_size=120")
    assert refused.exit_code == 1 and "already holds a run" in refused.output
    replaced = invoke(*common, "--set", "demo_size=150", "--overwrite", "--threads", "1")
    assert replaced.exit_code == 0, replaced.output
    assert "best epoch 1" in replaced.output
    config = json.loads((find_checkpoint(out) / "config.json").read_text())["config"]
    assert config["plugin"]["demo_size"] == 150 and config["threads"] == 1
    latest = invoke("evaluate", "--checkpoint", str(out), "--which", "latest")
    assert latest.exit_code == 0 and "checkpoint-0001" in latest.output


def test_all_items_bad_shows_the_reasons_and_writes_the_list(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("tokens,labels\n1 x,alpha\n,beta\n1 99,alpha\n")
    _, config = resolve_config(
        {}, {"modality": "tokens", "data": str(data), "out": str(tmp_path / "r")}
    )
    with pytest.raises(DataError, match=r"no usable item: all 3 items are bad.*bad.csv:2: token"):
        train(get_plugin("tokens"), config, quiet=True)
    report = json.loads((tmp_path / "r" / "bad_items.json").read_text())
    assert [item["item"] for item in report] == ["bad.csv:2", "bad.csv:3", "bad.csv:4"]
