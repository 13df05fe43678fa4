"""Pooling and loss registries: each name's own parameters and defaults, refused parameters,
duplicates and third-party entries; the run configuration records what was built."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from negev.engine import RunConfig, load_model
from negev.engine.distributed import World
from negev.engine.objectives import Objective
from negev.engine.trainer import _taken_pool_params
from negev.errors import ConfigError, PluginError
from negev.nn import (
    LOSSES,
    POOLINGS,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MantraHingeLoss,
    MantraMultiLabelHingeLoss,
    WildcatPool,
    create_loss,
    create_pool,
    register_loss,
    register_pool,
)
from negev_cli.app import app

SCORES = torch.randn(3, 2, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.fixture
def scratch_registries(monkeypatch):
    """Registrations made by a test vanish with it."""
    monkeypatch.setattr(POOLINGS, "_entries", dict(POOLINGS._entries))
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))


def test_named_poolings_mean_what_the_readme_table_says():
    ordered = SCORES.sort(dim=2, descending=True).values
    expected = {
        "max": ordered[..., 0],
        "gap": SCORES.mean(2),
        "maxmin": ordered[..., 0] + ordered[..., -1],  # alpha 1
        "weldon": ordered[..., :2].mean(2) + ordered[..., -2:].mean(2),  # k = 2, alpha 1
    }
    params = {"weldon": {"kmax": 2}}
    for name, reference in expected.items():
        pooled = create_pool(name, **params.get(name, {}))(SCORES)
        torch.testing.assert_close(pooled, reference, msg=name)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("maxmin", {"kmax": 3}, r"pooling 'maxmin' \(max\+min.*\) takes no 'kmax'; .*: alpha$"),
        ("weldon", {"kmx": 3}, r"takes no 'kmx' \(did you mean 'kmax'\?\); .*: kmax, alpha"),
        ("max", {"alpha": 1.0}, r"'max' \(max: top-1\) takes no parameter, got 'alpha'"),
        ("lse", {"kmin": 2}, r"takes no 'kmin'"),
        ("weldn", {}, r"unknown pooling 'weldn' \(did you mean 'weldon'\?\); choose one of max"),
    ],
)
def test_a_parameter_the_pooling_does_not_take_is_an_error(name, params, message):
    with pytest.raises(ConfigError, match=message):
        create_pool(name, **params)


def test_registering_a_taken_name_is_refused(scratch_registries):
    with pytest.raises(PluginError, match="pooling 'maxmin' is already registered"):
        register_pool("maxmin", WildcatPool)
    with pytest.raises(PluginError, match="loss 'bce' is already registered"):
        register_loss("bce", BCEWithLogitsLoss)
    with pytest.raises(PluginError, match="not a class or callable"):
        register_pool("mine", 3)


def test_third_party_poolings_register_as_a_class_or_a_callable(scratch_registries):
    class MedianPool(nn.Module):
        """Median of the regions."""

        def __init__(self, shift: float = 0.0):
            super().__init__()
            self.shift = shift

        def forward(self, scores, mask=None):
            return scores.flatten(2).median(2).values + self.shift

    register_pool("median", MedianPool)
    register_pool("top2")(lambda alpha=0.5: WildcatPool(2, 2, alpha))
    assert create_pool("median", shift=1.0)(SCORES).equal(SCORES.median(2).values + 1)
    assert create_pool("top2").alpha == 0.5
    assert create_pool(MedianPool, shift=2.0).shift == 2.0  # a class used as is
    with pytest.raises(ConfigError, match="'median' .* takes no 'shfit' .*'shift'"):
        create_pool("median", shfit=1.0)
    config = RunConfig.build({"modality": "m", "pooling": "top2", "alpha": 0.25})
    assert config.alpha == 0.25 and config.kmax is None


def test_run_config_takes_the_named_pooling_defaults_and_records_what_was_built():
    maxmin = RunConfig.build({"modality": "m", "pooling": "maxmin"})
    assert (maxmin.alpha, maxmin.kmax, maxmin.kmin, maxmin.beta_pos) == (1.0, None, None, None)
    weldon = RunConfig.build({"modality": "m", "pooling": "weldon"})
    assert (weldon.kmax, weldon.alpha, weldon.kmin) == (0.2, 1.0, None)
    wildcat = RunConfig.build({"modality": "m"})  # the engine's default pooling is unchanged
    assert (wildcat.pooling, wildcat.kmax, wildcat.kmin, wildcat.alpha) == (
        "wildcat",
        0.2,
        None,
        0.7,
    )
    built = create_pool(maxmin.pooling, **maxmin.pooling_params())
    assert (built.kmax, built.kmin, built.alpha) == (1, 1, 1.0)


def test_a_plugin_pooling_parameters_do_not_follow_another_pooling():
    plugin = {"pooling": "wildcat", "kmax": 0.1, "kmin": 0.1, "alpha": 0.5}
    config = RunConfig.build(plugin, {"modality": "m", "pooling": "maxmin"})
    assert (config.pooling, config.alpha, config.kmax, config.kmin) == ("maxmin", 1.0, None, None)
    kept = RunConfig.build(plugin, {"modality": "m", "alpha": 0.9})
    assert (kept.kmax, kept.kmin, kept.alpha) == (0.1, 0.1, 0.9)
    with pytest.raises(ConfigError, match="'maxmin' .* takes no 'kmax'"):
        RunConfig.build(plugin, {"modality": "m", "pooling": "maxmin", "kmax": 3})
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        RunConfig.build({"modality": "m", "loss": "hinge"})


# -- one loss protocol ------------------------------------------------------------------------


def _data(n=6, c=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, c, generator=g, dtype=torch.float64)
    targets = (torch.rand(n, c, generator=g) > 0.5).double()
    known = torch.rand(n, c, generator=g) > 0.3
    known[0] = False  # a sample without any known label counts 0
    return scores, targets, known


@pytest.mark.parametrize(
    ("loss", "element"),
    [
        (BCEWithLogitsLoss, lambda s, t: -(t * s.sigmoid().log() + (1 - t) * (-s).sigmoid().log())),
        (MantraMultiLabelHingeLoss, lambda s, t: max(0.0, 1 - (2 * t - 1) * s)),
    ],
)
def test_labelwise_losses_average_each_sample_over_its_known_labels(loss, element):
    scores, targets, known = _data()
    per_sample = []
    for i in range(len(scores)):  # a naive loop
        values = [float(element(scores[i, j], targets[i, j])) for j in range(4) if known[i, j]]
        per_sample.append(sum(values) / len(values) if values else 0.0)
    assert float(loss()(scores, targets, known)) == pytest.approx(sum(per_sample) / len(scores))
    assert float(loss("sum")(scores, targets, known.double())) == pytest.approx(sum(per_sample))
    none = loss("none")(scores, targets, known)
    assert none.shape == (6, 4) and bool((none[~known] == 0).all())


@pytest.mark.parametrize(("loss", "reference"), [(CrossEntropyLoss, F.cross_entropy)])
def test_single_label_losses_take_indices_or_one_hot_rows(loss, reference):
    scores, _, _ = _data()
    indices = torch.tensor([0, 3, 1, 2, 2, 0])
    one_hot = F.one_hot(indices, 4).double()
    expected = reference(scores, indices)
    torch.testing.assert_close(loss()(scores, indices), expected)
    torch.testing.assert_close(loss()(scores, one_hot, None), expected)
    torch.testing.assert_close(
        MantraHingeLoss()(scores, one_hot), MantraHingeLoss()(scores, indices)
    )
    with pytest.raises(ValueError, match="does not support missing labels"):
        loss()(scores, one_hot, torch.ones(6, 4, dtype=torch.bool))


def test_loss_modules_check_the_target_values_unless_told_not_to():
    scores, targets, _ = _data()
    bad = targets.clone()
    bad[2, 1] = 2.0
    for loss in (BCEWithLogitsLoss, MantraMultiLabelHingeLoss):
        with pytest.raises(ValueError, match=r"targets must be 0 or 1, got 2.0 at row 2, column 1"):
            loss()(scores, bad)
    # unchecked, the formula runs on the value given: BCE's -(t log p + (1 - t) log(1 - p))
    p = scores.sigmoid()
    naive = -(bad * p.log() + (1 - bad) * (1 - p).log()).mean()
    torch.testing.assert_close(BCEWithLogitsLoss(validate_args=False)(scores, bad), naive)

    indices = torch.tensor([0, 3, 1, 2, 2, 0])
    two_hot = F.one_hot(indices, 4).double()
    two_hot[4, 0] = 1.0  # a multi-hot row is not a class
    for loss in (CrossEntropyLoss, MantraHingeLoss):
        with pytest.raises(
            ValueError, match=r"targets row 4 = \[1.0, 0.0, 1.0, 0.0\] is not one-hot"
        ):
            loss()(scores, two_hot)
        with pytest.raises(ValueError, match=r"targets row 0 .* is not one-hot"):
            loss()(scores, torch.zeros(6, 4))  # no class at all
        with pytest.raises(ValueError, match=r"targets\[1\] = 7 is not a class index in \[0, 4\)"):
            loss()(scores, torch.tensor([0, 7, 1, 2, 2, 0]))
    # unchecked, a row is read as its argmax
    torch.testing.assert_close(
        CrossEntropyLoss(validate_args=False)(scores, two_hot),
        F.cross_entropy(scores, two_hot.argmax(1)),
    )


def test_every_registered_loss_takes_scores_targets_known():
    scores, targets, _ = _data()
    targets[:, 0], targets[:, 1] = 1.0, 0.0  # single-label rows for the single-label losses
    one_hot = F.one_hot(targets.argmax(1), 4).double()
    for name in LOSSES:
        multilabel = name != "ce"
        loss = create_loss(name, multilabel=multilabel)
        value = loss(scores.requires_grad_(), targets if multilabel else one_hot, None)
        assert value.dim() == 0 and torch.isfinite(value), name
    with pytest.raises(ConfigError, match="loss 'ce' needs single-label data"):
        create_loss("ce", multilabel=True)
    assert isinstance(create_loss("mantra", multilabel=False), MantraHingeLoss)


def test_the_engine_trains_with_a_registered_loss_through_its_module(scratch_registries):
    calls = []

    @register_loss("recorded")
    def recorded(reduction: str = "mean"):
        calls.append(reduction)
        return BCEWithLogitsLoss(reduction)

    scores, targets, known = _data()
    objective = Objective("recorded", multilabel=True, world=World())
    value = objective(scores, targets, global_size=12, known=known)
    assert calls == ["sum"]  # per-sample sums, scaled to the global batch
    expected = BCEWithLogitsLoss("sum")(scores, targets, known) / 12
    torch.testing.assert_close(value, expected)
    with pytest.raises(ConfigError, match="loss 'ap' does not support missing labels"):
        Objective("ap", True, World())(scores, targets, 6, known)


def test_pooling_maxmin_trains_max_plus_min_and_saves_what_it_built(tmp_path):
    out = tmp_path / "run"
    options = ["--pooling", "maxmin", "--epochs", "1", "--set", "demo_size=60", "--out", str(out)]
    result = CliRunner().invoke(app, ["train", "-m", "tokens", "-q", *options])
    assert result.exit_code == 0, result.output
    _, config, model, meta = load_model(out)
    pool = model.head.pool
    assert (pool.kmax, pool.kmin, pool.alpha) == (1, 1, 1.0)  # the README's max+min
    saved = {k: meta["config"][k] for k in ("kmax", "kmin", "alpha", "beta_pos", "beta_neg")}
    assert saved == {"kmax": None, "kmin": None, "alpha": 1.0, "beta_pos": None, "beta_neg": None}


def test_a_checkpoint_that_recorded_every_pooling_parameter_still_loads_as_built():
    old = {"modality": "m", "pooling": "maxmin", "kmax": 0.2, "kmin": None, "alpha": 0.7,
           "beta_pos": 5.0, "beta_neg": -5.0}  # fmt: skip
    config = RunConfig.build(_taken_pool_params(old))
    assert (config.alpha, config.kmax, config.beta_pos) == (0.7, None, None)  # max+min at 0.7
