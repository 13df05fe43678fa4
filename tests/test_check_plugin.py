"""Every first-party plugin passes the contract test kit on a tiny demo."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from negev.plugins import get_plugin
from negev.testing import check_plugin

TINY = {
    "tokens": ({"demo_size": 40}, ["1 x 2", "   "]),
    "image": (
        {"demo_train": 6, "demo_val": 2, "demo_test": 2, "width": 4, "spatial": 2},
        ["no-such-image.png"],
    ),
    "text": ({"demo_size": 40}, ["   "]),
    "molecule": ({"demo_size": 60}, ["C1CC(", "not a molecule"]),
    "audio": (
        {"demo_train": 4, "demo_val": 2, "demo_test": 2, "width": 4, "blocks": 1},
        ["no-such-clip.wav"],
    ),
    "bags": (
        {"demo_train": 4, "demo_val": 2, "demo_test": 2, "demo_min": 20, "demo_max": 60,
         "demo_dim": 8},
        ["bag.txt", "no-such-bag.pt"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TINY))
def test_first_party_plugins_pass_check_plugin(name):
    options, bad_inputs = TINY[name]
    passed = check_plugin(type(get_plugin(name)), options, bad_inputs=bad_inputs)
    assert passed[-1] == "evidence_metrics" and len(passed) == 11


def _broken(**overrides):
    from negev_example_plugin import TokenEncoder, TokensPlugin

    class LeakyEncoder(TokenEncoder):  # the padding's embedding reaches valid positions
        def forward(self, inputs):
            features = torch.relu(self.conv(self.embed(inputs["tokens"]).transpose(1, 2)))
            return features, inputs["mask"]

    methods = {
        "leak": {"build_encoder": lambda self, config: LeakyEncoder()},
        "render": {
            "render_evidence": lambda self, example, maps, scores, classes, out_dir, sel=None: [
                _write(out_dir.parent / "stray.html")
            ]
        },
        "augment": {
            "load_item": lambda self, example, *, train, generator, view=None: replace(
                example, inputs=torch.tensor(example.inputs) + int(train) * torch.randint(2, (1,))
            )
        },
    }
    return type("Broken", (TokensPlugin,), methods[overrides["kind"]])


def _write(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("leak", "padding: .* alone, .* in a batch"),
        ("render", "render: .*stray.html is outside out_dir"),
        ("augment", "augmentation: demo-\\d+: equal generators, other inputs"),
    ],
)
def test_check_plugin_finds_a_broken_contract(kind, message):
    with pytest.raises(AssertionError, match=f"check_plugin\\(tokens\\): {message}"):
        check_plugin(_broken(kind=kind), {"demo_size": 40})
