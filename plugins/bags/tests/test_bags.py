"""The bags plugin: bag files and tables, bad bags by name, the memory-bounded encoder against
the plain path, the demo's rule, and the CLI end to end on a CLAM-layout collection."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import negev
from negev.engine.model import EvidenceModel
from negev.nn import EvidenceHead, create_pool
from negev.plugins import get_plugin
from negev_bags.bags import read_bag
from negev_bags.demo import ARTEFACT, TUMOUR, make_slides
from negev_bags.encoders import InstanceEncoder, selective_recompute
from negev_bags.readers import read_bag_csv, read_mil_table
from negev_cli.app import app


def write_h5(path, features, coords=None):
    with h5py.File(path, "w") as file:
        file["features"] = features
        if coords is not None:
            file["coords"] = coords


def test_read_bag_layouts(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    xy = np.arange(10).reshape(5, 2)
    torch.save(torch.from_numpy(x), tmp_path / "a.pt")
    torch.save({"features": torch.from_numpy(x), "coords": torch.from_numpy(xy)}, tmp_path / "b.pt")
    np.save(tmp_path / "c.npy", x)
    write_h5(tmp_path / "d.h5", x[None], xy)  # CLAM's (1, n, d)
    for name in ("a.pt", "b.pt", "c.npy", "d.h5"):
        features, coords = read_bag(tmp_path / name)
        assert torch.equal(features, torch.from_numpy(x)), name
        if name in ("b.pt", "d.h5"):
            assert coords.tolist() == xy.tolist()
    write_h5(tmp_path / "e.h5", x, np.zeros((4, 2)))
    (tmp_path / "f.txt").write_text("1,2")
    torch.save({"x": torch.zeros(2)}, tmp_path / "g.pt")
    cases = {
        "missing.h5": "no such bag file",
        "e.h5": r"coords must be \(5, 2\)",
        "f.txt": "unknown bag file type",
        "g.pt": "a dict without 'features'",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=f"{name}: {message}"):
            read_bag(tmp_path / name)


def collection(tmp_path, rows):
    with open(tmp_path / "bags.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows(rows)
    return tmp_path / "bags.csv"


def test_bag_csv_reports_bad_bags_by_name(tmp_path):
    rng = np.random.default_rng(0)
    write_h5(tmp_path / "ok1.h5", rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))
    np.save(tmp_path / "ok2.npy", rng.normal(size=(6, 3)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    np.save(tmp_path / "wide.npy", rng.normal(size=(4, 5)))
    nan = rng.normal(size=(4, 3))
    nan[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    path = collection(
        tmp_path,
        [
            ["bag", "label", "split"],
            ["ok1.h5", "tumor", "train"],
            ["ok2.npy", "normal", "test"],
            ["missing.h5", "tumor", "train"],
            ["empty.npy", "tumor", "train"],
            ["wide.npy", "tumor", "train"],
            ["nan.npy", "tumor", "train"],
            ["ok2.npy", "cat", "train"],
            ["ok1.h5", "normal", "val"],
            ["ok2.npy", "tumor", "dev"],
        ],
    )
    data = read_bag_csv(path, classes=["normal", "tumor"])
    reasons = {b.name: b.reason for b in data.bad}
    assert reasons == {
        "bags.csv:4 (missing.h5)": "no such bag file",
        "bags.csv:5 (empty.npy)": "empty bag (no instance)",
        "bags.csv:6 (wide.npy)": "5 features per instance, expected 3",
        "bags.csv:7 (nan.npy)": "NaN or infinite features (instance 2, 1 such)",
        "bags.csv:8 (ok2.npy)": "unknown label 'cat' (labels: normal, tumor)",
        "bags.csv:9 (ok1.h5)": "listed again (first at line 2)",
        "bags.csv:10 (ok2.npy)": "split must be train, val or test, got 'dev'",
    }
    assert not data.multilabel and [e.labels for e in data.train] == [(1,)]
    assert [e.inputs.size for e in data.test] == [6]


def test_binary_labels_are_one_class_and_multilabel_uses_bars(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.save(tmp_path / "b.npy", np.ones((2, 3)))
    data = read_bag_csv(collection(tmp_path, [["bag", "label"], ["a.npy", "1"], ["b.npy", "0"]]))
    assert data.classes == ["1"] and data.multilabel
    assert sorted(e.labels for e in data.train + data.val + data.test) == [(), (0,)]
    rows = [["bag", "label"], ["a.npy", "x|y"], ["b.npy", "y"]]
    data = read_bag_csv(collection(tmp_path, rows))
    assert data.classes == ["x", "y"] and data.multilabel


def test_bag_csv_without_labels_for_prediction(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.save(tmp_path / "b.npy", np.ones((4, 3)))
    path = collection(tmp_path, [["bag", "split"], ["a.npy", "test"], ["b.npy", "test"]])
    with pytest.raises(ValueError, match="needs the columns bag,label"):
        read_bag_csv(path)
    data = read_bag_csv(path, labelled=False)  # the split column is not read either
    items = data.listed(data.train + data.val + data.test)
    assert [(e.inputs.size, e.labels) for e in items] == [(2, ()), (4, ())]
    rows = [["bag", "label"], ["a.npy", "not-a-class"], ["b.npy", ""]]  # labels ignored
    data = read_bag_csv(collection(tmp_path, rows), classes=["x"], labelled=False)
    assert not data.bad and len(data.train + data.val + data.test) == 2


def test_mil_table_groups_instances_and_names_bad_bags(tmp_path):
    rows = [
        ["1", "b1", "0.5", "1.0"],
        ["1", "b1", "0.25", "2.0"],
        ["0", "b2", "3", "4"],
        ["0", "b3", "nan", "1"],
        ["0", "b4", "x", "1"],
        ["1", "b5", "1", "1"],
        ["0", "b5", "1", "1"],
    ]
    with open(tmp_path / "musk.csv", "w", newline="") as file:
        csv.writer(file).writerows(rows)
    data = read_mil_table(tmp_path / "musk.csv", bag_column=1, label_column=0)
    reasons = {b.name: b.reason for b in data.bad}
    assert reasons["musk.csv: bag b3"].startswith("NaN or infinite features")
    assert reasons["musk.csv: bag b4"].startswith("a cell is not a number")
    assert reasons["musk.csv: bag b5"] == "its rows disagree on the label"
    bags = {e.name: e for e in data.train + data.val + data.test}
    assert bags["musk.csv: bag b1"].labels == (0,) and bags["musk.csv: bag b2"].labels == ()
    assert bags["musk.csv: bag b1"].inputs.features.tolist() == [[0.5, 1.0], [0.25, 2.0]]


def _grads(model, x, mask):
    for p in model.parameters():
        p.grad = None
    encoder, head = model
    scores = head(*encoder({"features": x, "mask": mask})).scores
    (scores * torch.tensor([1.0, -2.0])).sum().backward()
    return scores.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize(
    ("pooling", "params"),
    [
        ("weldon", {"kmax": 3}),
        ("wildcat", {"kmax": 0.05, "kmin": 0.05}),
        ("abmil", {}),
        ("gabmil", {"attention_dim": 8}),
        ("dsmil", {"query_dim": 8}),
    ],
)
@pytest.mark.parametrize("skip", [False, True])
def test_chunked_encoder_gives_the_plain_gradients(pooling, params, skip):
    torch.manual_seed(0)
    encoder = InstanceEncoder(
        6, (16, 8), chunk=10**6, mean=torch.randn(6), std=torch.rand(6) + 1, skip=skip
    )
    head = EvidenceHead(encoder.out_channels, 2, pool=create_pool(pooling, **params))
    model = torch.nn.ModuleList([encoder, head])
    x = torch.randn(2, 500, 6)
    mask = torch.arange(500) < torch.tensor([[500], [321]])
    plain = _grads(model, x, mask)
    encoder.chunk = 37
    chunked = _grads(model, x, mask)
    assert torch.allclose(plain[0], chunked[0], atol=1e-6)
    for a, b in zip(plain[1], chunked[1], strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("pooling", "params"),
    [("meanwildcat", {"kmax": 0.05, "kmin": 0.05}), ("weldon", {"kmax": 3}), ("abmil", {}),
     ("gabmil", {"attention_dim": 8})],
)  # fmt: skip
@pytest.mark.parametrize("hidden", [(), (16, 8)])
@pytest.mark.parametrize("each", [False, True], ids=["mean-map", "each-map"])
def test_readout_inside_the_chunks_is_the_same_model(pooling, params, hidden, each):
    """The engine's model (the head's linear maps applied inside the encoder's chunks,
    ``forward_readout``) against the plain head over the full features: scores, maps and every
    gradient; ``gabmil``'s attention network is no linear map, so it takes the plain path."""
    torch.manual_seed(0)
    encoder = InstanceEncoder(6, hidden, chunk=37, mean=torch.randn(6), std=torch.rand(6) + 1,
                              skip=bool(hidden))  # fmt: skip
    pool = create_pool(pooling, **params)
    head = EvidenceHead(encoder.out_channels, 2, num_maps=2, pool=pool, pool_each_map=each)
    model = EvidenceModel(encoder, head)
    assert (head.readout_layers() is None) == (pooling == "gabmil")
    x = torch.randn(2, 500, 6)
    inputs = {"features": x, "mask": torch.arange(500) < torch.tensor([[500], [321]])}
    weights = torch.tensor([1.0, -2.0])

    def run(forward):
        model.zero_grad()
        out = forward()
        (out.scores * weights).sum().backward()
        return out, [p.grad.clone() for p in model.parameters()]

    fused, fused_grads = run(lambda: model(inputs))
    plain, plain_grads = run(lambda: head(*encoder(inputs)))
    torch.testing.assert_close(fused.scores, plain.scores, atol=1e-5, rtol=1e-5)
    valid = inputs["mask"][:, None].expand_as(plain.maps)
    torch.testing.assert_close(fused.maps[valid], plain.maps[valid], atol=1e-5, rtol=1e-5)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_backward_recomputes_only_the_selected_instances():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    seen = []
    net.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    x = torch.randn(1000, 4)
    out = selective_recompute(net, x, chunk=100)
    assert seen == [100] * 10 and out.requires_grad
    seen.clear()
    head = EvidenceHead(3, 1, pool=create_pool("weldon", kmax=5))
    head(out.T[None]).scores.sum().backward()
    assert seen == [10]  # 5 top + 5 bottom instances


def test_collate_masks_bags_of_different_sizes():
    plugin = get_plugin("bags")
    examples = make_slides(3, seed=1, dim=4, sizes=(20, 60))
    plugin.load_state({"in_features": 4})
    batch = plugin.collate(examples)
    sizes = [e.inputs.size for e in examples]
    assert batch["features"].shape == (3, max(sizes), 4)
    assert batch["mask"].sum(1).tolist() == sizes
    encoder = plugin.build_encoder({"plugin": {"hidden": "5", "skip": "false"}})
    features, mask = encoder(batch)
    assert features.shape == (3, 5, max(sizes)) and torch.equal(mask, batch["mask"])
    beside = plugin.build_encoder({"plugin": {"hidden": "5"}})  # skip: [x, MLP(x)]
    both, _ = beside(batch)
    assert both.shape == (3, 4 + 5, max(sizes))
    torch.testing.assert_close(both[:, :4], batch["features"].transpose(1, 2))
    alone = encoder(plugin.collate(examples[:1]))[0]
    assert torch.allclose(alone[0], features[0, :, : sizes[0]], atol=1e-6)


def test_demo_follows_the_and_not_rule():
    for example in make_slides(40, seed=3, dim=8, sizes=(200, 400)):
        kinds = example.truth["kinds"]
        positive = bool((kinds == TUMOUR).any()) and not bool((kinds == ARTEFACT).any())
        assert example.labels == ((0,) if positive else ())
        assert example.inputs.coords.shape == (example.inputs.size, 2)


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="unknown bags option 'hiden'"):
        get_plugin("bags").load_data(None, {"plugin": {"hiden": "3"}})


def test_cli_on_a_clam_layout_collection(tmp_path):
    rng = np.random.default_rng(0)
    rows = [["bag", "label", "split"]]
    centres = rng.normal(size=(2, 6)) * 3
    for i in range(36):
        positive = i % 2 == 0
        n = int(rng.integers(20, 60))
        x = rng.normal(size=(n, 6)) + centres[0]
        if positive:
            x[:3] = rng.normal(size=(3, 6)) + centres[1]
        write_h5(tmp_path / f"s{i}.h5", x.astype(np.float32), rng.integers(0, 500, (n, 2)))
        split = "train" if i < 24 else "val" if i < 30 else "test"
        rows.append([f"s{i}.h5", "tumor" if positive else "normal", split])
    rows.append(["gone.h5", "tumor", "train"])
    data = collection(tmp_path, rows)
    run = tmp_path / "run"
    runner = CliRunner()
    common = ["--modality", "bags", "--data", str(data), "--out", str(run), "--quiet"]
    result = runner.invoke(app, ["train", *common, "--epochs", "2", "--pooling", "maxmin"])
    assert result.exit_code != 0 and "gone.h5" in result.output
    maps = ["--num-maps", "2", "--pool-each-map"]  # each map keeps its own max and min
    result = runner.invoke(
        app, ["train", *common, "--epochs", "8", "--pooling", "maxmin", *maps, "--skip-bad"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "bad_items.json").read_text())[0]["reason"] == "no such bag file"
    head = negev.load(run).model.head  # the option reached the saved model
    assert head.pool_each_map and head.pool_classes == head.proj.out_features == 2 * 2
    out = tmp_path / "explained"
    result = runner.invoke(
        app,
        [
            "explain",
            "--checkpoint",
            str(run),
            "--input",
            str(tmp_path / "s0.h5"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with open(next(out.glob("s0-*_instances.csv"))) as file:
        table = list(csv.DictReader(file))
    features, coords = read_bag(tmp_path / "s0.h5")
    assert len(table) == len(features)
    assert [float(table[3]["x"]), float(table[3]["y"])] == coords[3].tolist()
    assert [len(list(out.glob(f"s0-*_{name}.png"))) for name in ("normal", "tumor")] == [1, 1]
    assert {"kept_tumor", "score_tumor"} <= set(table[0])
    kept = [float(row["kept_tumor"]) for row in table]
    assert 1 <= kept.count(1) <= 2 and 1 <= kept.count(-1) <= 2  # the two maps' ends


def test_load_item_reads_a_file_bag_into_memory(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_h5(tmp_path / "a.h5", x, np.zeros((4, 2)))
    np.save(tmp_path / "b.npy", x + 1)
    data = read_bag_csv(collection(tmp_path, [["bag", "label"], ["a.h5", "1"], ["b.npy", "0"]]))
    plugin = get_plugin("bags")
    plugin.load_state({"in_features": 3})
    for example in data.train + data.val + data.test:
        assert example.inputs.features is None  # only the path until loaded
        loaded = plugin.load_item(example, train=True, generator=torch.Generator())
        assert loaded.inputs.features is not None and loaded.labels == example.labels
        batch = plugin.collate([loaded])
        assert torch.equal(batch["features"][0], plugin.collate([example])["features"][0])


@pytest.mark.parametrize(
    ("pooling", "option", "size", "module"),
    [("gabmil", "--attention-dim", 12, "V"), ("dsmil", "--query-dim", 6, None)],
)
def test_attention_sizes_are_run_options(tmp_path, pooling, option, size, module):
    from negev.engine import load_model

    run = tmp_path / "run"
    demo = ["--set", "demo_train=8", "--set", "demo_val=4", "--set", "demo_test=4"]
    demo += ["--set", "demo_min=20", "--set", "demo_max=40"]
    common = ["train", "-m", "bags", "--epochs", "1", "--out", str(run), "-q", *demo]
    result = CliRunner().invoke(app, [*common, "--pooling", pooling, option, str(size)])
    assert result.exit_code == 0, result.output
    _, config, model, _ = load_model(run)
    assert getattr(config, option[2:].replace("-", "_")) == size
    attend = model.head.attend
    width = getattr(attend, module).out_features if module else attend.out_features - 1
    assert width == size
    result = CliRunner().invoke(app, [*common, "--overwrite", "--pooling", "maxmin", option, "3"])
    assert result.exit_code != 0 and option[2:].replace("-", "_") in result.output


def test_instance_csv_marks_each_kept_instance(tmp_path):
    """+1 kept high, -1 kept low, 2 both (one map high, another low), 0 not kept."""
    from negev_bags.evidence import write_instance_csv

    high = torch.tensor([[True, False, True, False]])
    low = torch.tensor([[False, True, True, False]])
    path = write_instance_csv(tmp_path / "i.csv", torch.zeros(1, 4), ["c"], None, (high, low))
    with open(path) as file:
        assert [int(row["kept_c"]) for row in csv.DictReader(file)] == [1, -1, 2, 0]
