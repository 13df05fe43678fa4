"""The bags plugin's default model: bag mean + gated WILDCAT of the deviations, started from the
bag-mean logistic regression of the training bags (checked against scikit-learn), which never
reads the validation or test bags."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from negev.engine import load_model, resolve_config, train
from negev.engine.model import build_model
from negev.nn import EvidenceHead, create_pool
from negev_bags.encoders import EVIDENCE_START
from negev_bags.pooling import mean_wildcat_pool


def write_collection(folder, poison: bool = False, seed: int = 0, interleave: bool = False):
    """40 train, 8 val, 8 test bags of 2-9 instances of 5 features (on different scales); a
    bag is positive when its mean is high on the first feature. ``poison``: the val and test
    bags get other features and flipped labels. ``interleave``: every sixth of the first 48
    bags is a val bag (else the 8 after the train bags)."""
    rng = np.random.default_rng(seed)
    rows = [["bag", "label", "split"]]
    for i in range(56):
        split = "train" if i < 40 else "val" if i < 48 else "test"
        if interleave and i < 48:
            split = "val" if i % 6 == 5 else "train"
        x = rng.normal(size=(int(rng.integers(2, 10)), 5)) * [1, 10, 0.1, 1, 1] + [0, 5, 0, 0, 0]
        label = int(x[:, 0].mean() + 0.3 * rng.normal() > 0)
        if poison and split != "train":
            x, label = rng.normal(size=(3, 5)) * 100, 1 - label
        np.save(folder / f"b{i}.npy", x.astype(np.float32))
        rows.append([f"b{i}.npy", str(label), split])
    with open(folder / "bags.csv", "w", newline="") as file:
        csv.writer(file).writerows(rows)
    return folder / "bags.csv"


def fitted_plugin(path, out, **options):
    plugin, config = resolve_config({}, {"modality": "bags", "data": str(path), "out": str(out),
                                         **options})  # fmt: skip
    data = plugin.load_data(str(path), config.to_dict())
    state = plugin.fit_state(data, config.to_dict())
    plugin.load_state(state, config.to_dict())
    return plugin, config, data, state


def baseline(means: np.ndarray, y: np.ndarray) -> GridSearchCV:
    """The reference: StandardScaler + LogisticRegression on bag means, C by the log loss of a
    stratified, shuffled inner 5-fold CV (seed 0), by scikit-learn."""
    return GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10, max_iter=10_000)),
        {"logisticregression__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
    ).fit(means, y)


def bag_scores(model, plugin, examples) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(plugin.collate([e])).scores[:, 0] for e in examples]).numpy()


def means_of(examples) -> np.ndarray:
    return np.stack([e.inputs.load()[0].double().mean(0).numpy() for e in examples])


@pytest.mark.parametrize(
    ("hidden", "maps"),
    [((), {}), ((4,), {}), ((4,), {"num_maps": 3, "pool_each_map": True})],
    ids=["linear", "mlp", "mlp-3-maps"],
)
def test_default_model_starts_as_the_bag_mean_logistic_regression(tmp_path, hidden, maps):
    """Linear scorer, or an MLP whose input is kept beside it (``skip``, the default): the model
    built (epoch 0) is the baseline exactly, the instance evidence at 0; training starts it at a
    small multiple of the baseline's instance scores (and of a default initialisation on the
    MLP part). With M maps pooled each on its own, each map's bag-mean term is the fit."""
    plugin, config, data, state = fitted_plugin(
        write_collection(tmp_path), tmp_path / "run", plugin={"hidden": hidden},
        **maps,
    )  # fmt: skip
    assert config.pooling == "meanwildcat"
    model = build_model(plugin, config, len(data.classes)).eval()
    assert model.started
    head, d = model.head, 5
    assert head.proj.weight.shape[1] == d + sum(hidden[-1:])
    assert not head.attend.weight[:, d:].any()  # the baseline reads the features only
    assert not head.proj.weight.any() and not head.proj.bias.any()
    examples = data.train + data.val + data.test
    ours = bag_scores(model, plugin, examples)
    search = baseline(means_of(data.train), np.array([int(0 in e.labels) for e in data.train]))
    assert state["warm_start"]["C"] == [search.best_params_["logisticregression__C"]]
    np.testing.assert_allclose(ours, search.decision_function(means_of(examples)), atol=1e-4)
    model.begin_training()
    assert head.attend.out_features == head.pool_classes == (maps.get("num_maps", 1) if maps else 1)
    torch.testing.assert_close(head.proj.weight[:, :d], EVIDENCE_START * head.attend.weight[:, :d])
    assert EVIDENCE_START <= 0.01 and not head.proj.bias.any()
    if hidden:
        assert head.proj.weight[:, d:].abs().max() < EVIDENCE_START


def test_warm_start_never_reads_the_validation_or_test_bags(tmp_path):
    (tmp_path / "clean").mkdir()
    (tmp_path / "poisoned").mkdir()
    _, _, _, clean = fitted_plugin(write_collection(tmp_path / "clean"), tmp_path / "r1")
    poisoned_csv = write_collection(tmp_path / "poisoned", poison=True)
    _, _, data, poisoned = fitted_plugin(poisoned_csv, tmp_path / "r2")
    assert max(float(e.inputs.load()[0].abs().max()) for e in data.test) > 50  # it is poisoned
    assert poisoned == clean


def test_other_poolings_and_hidden_layers_train_from_scratch(tmp_path):
    path = write_collection(tmp_path)
    for options in ({"pooling": "maxmin"}, {"plugin": {"hidden": (4,), "skip": False}},
                    {"plugin": {"warm_start": False}}):  # fmt: skip
        _, _, _, state = fitted_plugin(path, tmp_path / "run", **options)
        assert "warm_start" not in state


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(("kmax", "kmin", "alpha"), [(1, 1, 1.0), (0.3, 2, 0.7), (2, 0, 0.5)])
def test_mean_wildcat_pool_is_the_formula(kmax, kmin, alpha, masked):
    """Against a loop over samples: mean(a) + mean top-k+ (z - m) + alpha mean bottom-k- (z - m),
    m = mean(z), over the valid regions, k a count or round(fraction * n) (at least 1)."""
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 3, 7, generator=generator, dtype=torch.float64)
    linear = torch.randn(4, 3, 7, generator=generator, dtype=torch.float64)
    mask = torch.rand(4, 7, generator=generator) > 0.3 if masked else torch.ones(4, 7, dtype=bool)
    mask[:, 0] = True
    got = mean_wildcat_pool(scores, linear, kmax, kmin, alpha, mask if masked else None)
    for b in range(4):
        for c in range(3):
            z, a = scores[b, c][mask[b]], linear[b, c][mask[b]]
            n = len(z)
            high = max(1, round(kmax * n)) if kmax < 1 else min(kmax, n)
            low = max(1, round(kmin * n)) if 0 < kmin < 1 else min(kmin, n)
            d = (z - z.mean()).sort(descending=True).values
            ends = d[:high].mean() + (alpha * d[n - low :].mean() if low else 0.0)
            torch.testing.assert_close(got[b, c], a.mean() + ends)


def test_mean_wildcat_head_is_the_bag_mean_model_at_zero_evidence_and_ignores_shifts():
    head = EvidenceHead(4, 2, pool=create_pool("meanwildcat", kmax=0.2, alpha=1.0))
    features, mask = torch.randn(3, 4, 10), torch.ones(3, 10, dtype=torch.bool)
    mask[0, 6:] = False
    means = (features * mask[:, None]).sum(-1) / mask.sum(-1, keepdim=True)  # (3, 4)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
    torch.testing.assert_close(head(features, mask).scores, head.attend(means))
    shift = torch.randn(3, 4, 1)  # one offset of every feature of each bag
    with torch.no_grad():
        head.proj.weight.normal_()
    moved = head(features + shift, mask).scores - head(features, mask).scores
    torch.testing.assert_close(moved, head.attend(shift[..., 0]) - head.attend.bias)


def test_engine_keeps_the_bag_mean_start_as_epoch_zero(tmp_path):
    """The start the encoder writes is a candidate of best-epoch selection like the core's linear
    warm start: training that cannot change the model (lr 1e-12) keeps epoch 0, and its val
    record is the started model's (the baseline, the evidence at 0)."""
    import json

    from negev.engine import train

    path = write_collection(tmp_path)
    plugin, config, data, _ = fitted_plugin(path, tmp_path / "run", epochs=2, lr=1e-12,
                                            weight_decay=0.0)  # fmt: skip
    result = train(plugin, config, quiet=True)
    assert result.best_epoch == 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records[0]["warm_start"] == "encoder"
    # without a start (warm_start off) the run trains from scratch: no epoch 0
    _, config, _, _ = fitted_plugin(path, tmp_path / "cold", epochs=1,
                                    plugin={"warm_start": False})  # fmt: skip
    train(plugin, config, quiet=True, evaluate_test=False)
    lines = (tmp_path / "cold" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]


def test_kept_start_is_refit_on_train_and_val_bags(tmp_path):
    """When epoch 0 is kept, the run's best model is the bag-mean logistic regression of the
    train + val bags as the CSV lists them (C by inner CV on them, the scaler fitted on them), by
    scikit-learn: the same model, instance evidence included, as that baseline. The val bags are
    listed among the train bags, and the inner CV picks another C on train-then-val order."""
    path = write_collection(tmp_path, seed=10, interleave=True)
    options = {"modality": "bags", "data": str(path), "out": str(tmp_path / "run"),
               "epochs": 1, "workers": 0, "start_margin": 1e6}  # fmt: skip
    plugin, config = resolve_config({}, options)
    assert train(plugin, config, quiet=True).best_epoch == 0
    plugin, config, model, _ = load_model(tmp_path / "run")
    data = plugin.load_data(str(path), config.to_dict())
    ours = bag_scores(model, plugin, data.test)
    listed = sorted(data.train + data.val, key=lambda e: int(e.name.split(":")[1].split()[0]))
    search = baseline(means_of(listed), np.array([int(0 in e.labels) for e in listed]))
    np.testing.assert_allclose(ours, search.decision_function(means_of(data.test)), atol=1e-4)
    merged = data.train + data.val  # another order: another inner CV, another C (here)
    other = baseline(means_of(merged), np.array([int(0 in e.labels) for e in merged]))
    assert other.best_params_ != search.best_params_


def test_a_run_resumed_from_its_start_trains_as_an_uninterrupted_one(tmp_path):
    """Epoch 0 (the baseline, evidence at 0) is saved before training sets the evidence it starts
    from: a run resumed from that checkpoint sets it too, and trains the same epoch 1."""
    import shutil

    from negev.engine.checkpoint import RunWarning, load_checkpoint

    path = write_collection(tmp_path)
    options = {"modality": "bags", "data": str(path), "out": str(tmp_path / "run"), "epochs": 1,
               "workers": 0, "refit": False, "keep": 10}  # fmt: skip
    plugin, config = resolve_config({}, options)
    train(plugin, config, quiet=True, evaluate_test=False)
    first = load_checkpoint(tmp_path / "run" / "checkpoint-0001")["weights"]
    assert first["head.proj.weight"].any()  # trained from the evidence at EVIDENCE_START
    shutil.rmtree(tmp_path / "run" / "checkpoint-0001")
    with pytest.warns(RunWarning, match="checkpoint-0000"):  # the newest one left
        train(plugin, config, quiet=True, evaluate_test=False, resume=True)
    again = load_checkpoint(tmp_path / "run" / "checkpoint-0001")["weights"]
    for name, tensor in first.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)
