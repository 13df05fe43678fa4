"""The molecule defaults start from the practitioner's baseline: the warm-started model's
probabilities equal scikit-learn's logistic regression on RDKit's Morgan count fingerprint."""

from __future__ import annotations

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from sklearn.linear_model import LogisticRegression

from negev.engine import resolve_config
from negev.engine.data import BatchLoader
from negev.engine.model import build_model
from negev.engine.warm_start import linear_warm_start


def test_default_model_starts_as_logistic_regression_on_morgan_counts(tmp_path):
    options = {"modality": "molecule", "data": "demo:nci", "out": str(tmp_path),
               "plugin": {"demo_size": 100}}  # fmt: skip
    plugin, config = resolve_config({}, options)
    assert config.pooling == "sumwildcat" and plugin.warm_start(config.to_dict())
    plugin.load_state({}, config.to_dict())
    data = plugin.load_data(config.data, config.to_dict())
    model = build_model(plugin, config, len(data.classes))
    loader = BatchLoader(plugin, {"train": data.train, "val": data.val}, 1, 0, torch.device("cpu"))
    start = linear_warm_start(model, loader, data, "roc_auc", 32, grid=(0.1, 1.0))

    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)

    def counts(examples):
        mols = [Chem.MolFromSmiles(e.inputs.smiles) for e in examples]
        return np.array([morgan.GetCountFingerprintAsNumPy(m) for m in mols], float)

    labels = np.array([0 in e.labels for e in data.train])
    reference = LogisticRegression(C=start.C, max_iter=10_000, tol=1e-8)
    expected = reference.fit(counts(data.train), labels).predict_proba(counts(data.val))[:, 1]
    with torch.no_grad():
        scores = model(plugin.collate(data.val)).scores[:, 0]
    np.testing.assert_allclose(torch.sigmoid(scores).numpy(), expected, atol=1e-3)
