"""MANTRA hinge losses against per-sample loops."""

from __future__ import annotations

import pytest
import torch

from negev.nn import MantraHingeLoss, MantraMultiLabelHingeLoss
from negev.nn.functional import mantra_hinge_loss, mantra_multilabel_hinge_loss


def test_multiclass_hinge_matches_loop():
    torch.manual_seed(0)
    scores, targets = torch.randn(16, 5), torch.randint(0, 5, (16,))
    expected = []
    for s, t in zip(scores.tolist(), targets.tolist(), strict=True):
        worst = max(1 + s[y] for y in range(5) if y != t)
        expected.append(max(0.0, worst - s[t]))
    out = mantra_hinge_loss(scores, targets, "none")
    torch.testing.assert_close(out, torch.tensor(expected))
    assert MantraHingeLoss()(scores, targets).item() == pytest.approx(sum(expected) / 16, rel=1e-6)


def test_multilabel_hinge_matches_loop():
    torch.manual_seed(1)
    scores, targets = torch.randn(8, 3), torch.rand(8, 3) < 0.5
    expected = [
        max(0.0, 1 - (1 if t else -1) * s)
        for row_s, row_t in zip(scores.tolist(), targets.tolist(), strict=True)
        for s, t in zip(row_s, row_t, strict=True)
    ]
    out = mantra_multilabel_hinge_loss(scores, targets, "sum")
    assert out.item() == pytest.approx(sum(expected), rel=1e-6)
    assert MantraMultiLabelHingeLoss("none")(scores, targets.float()).shape == (8, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"targets\[1\] = 7 is not a class index in \[0, 3\)"):
        mantra_hinge_loss(torch.randn(2, 3), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="integer class indices"):
        mantra_hinge_loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="C >= 2"):
        mantra_hinge_loss(torch.randn(2, 1), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        mantra_multilabel_hinge_loss(torch.randn(2, 2), torch.tensor([[0, 3], [1, 0]]))
