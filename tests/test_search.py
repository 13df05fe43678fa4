"""negev.engine.search and ``negev tune``: every trial recorded, the best one on validation kept as
the run's best checkpoint, the test split untouched until the single final evaluation."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from negev.engine import load_model, resolve_config, train
from negev.engine import search as search_module
from negev.engine.search import POOLINGS, _as_point, _space, search, suggest
from negev.engine.trainer import refuse_ignored_options
from negev.plugins import Example, get_plugin
from negev_cli.app import app

FAST = {"modality": "tokens", "epochs": 2, "workers": 0, "plugin": {"demo_size": 160}}


class _Untouchable:
    """Inputs that fail the test the moment anything reads them."""

    def __getattr__(self, name):
        raise AssertionError("the test split was read")

    def __len__(self):
        raise AssertionError("the test split was read")

    def __iter__(self):
        raise AssertionError("the test split was read")

    def __getitem__(self, index):
        raise AssertionError("the test split was read")


class _SealedTest(type(get_plugin("tokens"))):
    """The example plugin, with test examples whose inputs cannot be read."""

    def load_data(self, spec, config):
        splits = super().load_data(spec, config)
        splits.test = [Example(e.name, _Untouchable(), e.labels) for e in splits.test]
        return splits


def test_search_never_reads_the_test_split(tmp_path):
    plugin = _SealedTest()
    _, config = resolve_config({}, {**FAST, "out": str(tmp_path / "sealed")})
    with pytest.raises(Exception, match="test split was read"):  # the seal works
        train(plugin, config, evaluate_test=True, quiet=True)
    config.out = str(tmp_path / "search")
    result = search(plugin, config, trials=3, evaluate_test=False, quiet=True)
    assert [t.state for t in result.trials] == ["complete"] * 3 and result.metrics == {}


def test_search_records_trials_and_keeps_the_best_on_validation(tmp_path):
    # start_margin 0: the plain best trial (the one-SE rule: tests/test_selection.py)
    options = {**FAST, "out": str(tmp_path / "run"), "start_margin": 0.0}
    plugin, config = resolve_config({}, options)
    result = search(plugin, config, trials=3, quiet=True)
    run = tmp_path / "run"
    lines = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert [line["number"] for line in lines] == [0, 1, 2]
    # the first trial is the configuration as given
    assert lines[0]["params"]["lr"] == pytest.approx(config.lr)
    assert lines[0]["params"]["pooling"] == config.pooling == "maxmin"  # outside the space
    values = [line["value"] for line in lines]
    assert result.best.value == max(values) and result.best.number == values.index(max(values))
    table = (run / "trials.md").read_text()
    assert table.count("\n| ") == 4 and "(chosen)" in table
    # the run's best checkpoint is the chosen trial's, with that trial's options
    best = json.loads((run / "best.json").read_text())
    assert best["value"] == pytest.approx(result.best.value)
    _, chosen_config, model, _ = load_model(run)
    assert chosen_config.lr == pytest.approx(lines[result.best.number]["params"]["lr"])
    trial_weights = load_model(result.best.run)[2].state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trial_weights[key])
    # test scored once, after the search
    final = json.loads((run / "final_metrics.json").read_text())
    assert final == pytest.approx(result.metrics) and "accuracy" in final or "mAP" in final
    with pytest.raises(ValueError, match="already holds a run"):
        search(plugin, config, trials=1, quiet=True)


def test_tune_command(tmp_path):
    out = tmp_path / "tuned"
    result = CliRunner().invoke(
        app,
        ["tune", "-m", "tokens", "--out", str(out), "--trials", "2", "--epochs", "1",
         "--workers", "0", "--set", "demo_size=120", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "chosen trial" in result.output and (out / "trials.md").is_file()
    assert len((out / "trials.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("modality", "options", "family", "point"),
    [
        ("tokens", {}, None, {}),  # maxmin: no k, no beta
        ("tokens", {"pooling": "sumwildcat"}, "wildcat", {"k": 0.25, "alpha": 1.0}),
        ("bags", {"plugin": {}}, "wildcat", {"k": 0.02, "alpha": 1.0}),  # its meanwildcat
        ("bags", {"plugin": {}, "pooling": "gabmil"}, None, {}),
        ("tokens", {"pooling": "weldon", "kmax": 3}, None, {}),  # a count k: as configured
    ],
)
def test_the_configured_pooling_is_the_first_trial(modality, options, family, point):
    """A pooling outside the space joins it, varied by the parameters it takes, and the first
    trial is the configuration as given; the space's own poolings are left as they are."""
    _, config = resolve_config({}, {**FAST, "modality": modality, **options})
    space = _space(config)
    assert space == {**POOLINGS, config.pooling: family}
    first = _as_point(config, (), space)
    assert first == {"lr": config.lr, "weight_decay": config.weight_decay,
                     "pooling": config.pooling, **point}  # fmt: skip
    _, wildcat = resolve_config({}, {**FAST, "pooling": "weldon", "kmax": 0.1})
    assert _space(wildcat) == POOLINGS and _as_point(wildcat, (), POOLINGS)["pooling"] == "wildcat"


def test_a_trial_under_another_encoder_drops_the_configured_encoders_options(tmp_path, monkeypatch):
    """``buckets`` set for the hashed encoder has no effect under conv: a conv trial runs with it
    at its default instead of failing as a user's ``--set buckets=... encoder=conv`` does."""
    tables: dict[str, dict] = {}

    def recording_train(plugin, config, **kwargs):
        tables[config.plugin["encoder"]] = config.plugin
        return train(plugin, config, **kwargs)

    def alternating(trial, encoders, poolings):  # trial 0 (the defaults) hashed, then conv
        params = suggest(trial, encoders, poolings)
        return {**params, "plugin": {"encoder": encoders[trial.number % 2]}}

    monkeypatch.setattr(search_module, "train", recording_train)
    monkeypatch.setattr(search_module, "suggest", alternating)
    options = {"modality": "text", "epochs": 1, "workers": 0, "out": str(tmp_path / "run"),
               "plugin": {"demo_size": 60, "buckets": "256", "warm_start": "false"}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    result = search(plugin, config, trials=2, encoders=("hashed", "conv"), evaluate_test=False,
                    quiet=True)  # fmt: skip
    assert [t.state for t in result.trials] == ["complete"] * 2
    assert tables["hashed"]["buckets"] == 256 and tables["hashed"]["warm_start"] is False
    assert tables["conv"]["buckets"] == 2**20 and tables["conv"]["warm_start"] is True


@pytest.mark.parametrize(
    ("sets", "encoders", "refused"),
    [
        ({"layers": "3"}, ("hashed", "mpnn"), None),  # the mpnn trials use it
        ({"encoder": "mpnn", "buckets": "512"}, ("hashed", "mpnn"), None),
        ({"layers": "3"}, ("hashed",), "layers"),  # no trial would
        ({"encoder": "mpnn", "buckets": "512"}, ("mpnn",), "buckets"),
    ],
)
def test_tune_refuses_only_an_option_no_trial_would_use(sets, encoders, refused, tmp_path):
    plugin, config = resolve_config({}, {"modality": "molecule", "plugin": sets,
                                         "out": str(tmp_path / "run")})  # fmt: skip
    if refused is None:
        refuse_ignored_options(plugin, config, encoders)
        return
    with pytest.raises(ValueError, match=rf"molecule plugin option {refused}=.* only applies"):
        search(plugin, config, trials=1, encoders=encoders, quiet=True)
    assert not (tmp_path / "run").exists()
