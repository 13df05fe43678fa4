"""Atom comprehensiveness / sufficiency: a hand-worked case and the plugin against a direct loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from negev.nn import EvidenceHead, WildcatPool
from negev.plugins import Example
from negev_molecule.chem import parse_smiles
from negev_molecule.data import Featurizer, atom_evidence
from negev_molecule.faithfulness import atom_faithfulness, mask_atoms
from negev_molecule.graph import collate_graphs
from negev_molecule.plugin import MoleculePlugin


def graph_of(smiles: str):
    return Featurizer()(parse_smiles(smiles))


def test_atom_faithfulness_of_a_four_atom_molecule():
    # butanol's 5 heavy atoms C C C C O; p = 0.2 + 0.6 [atom 4 unmasked] + 0.2 [atom 0 unmasked];
    # evidence ranks atoms 4, 0, 1, 2, 3. Bins 20 % / 40 % of 5 atoms: {4} / {4, 0}.
    graph = graph_of("CCCCO")
    assert graph.atoms.shape[0] == 5

    def probability(graphs, owners):
        alive = [(g.atoms.abs().sum(1) > 0).tolist() for g in graphs]
        return np.array([0.2 + 0.6 * a[4] + 0.2 * a[0] for a in alive])

    evidence = [np.array([2.0, 1.0, 0.5, 0.0, 3.0])]
    result = atom_faithfulness(probability, [graph], evidence, fractions=(0.2, 0.4))
    # masking {4}: 1 -> 0.4, {4, 0}: 1 -> 0.2; keeping {4}: 0.8, {4, 0}: 1
    assert result["atom_comprehensiveness"] == pytest.approx((0.6 + 0.8) / 2)
    assert result["atom_sufficiency"] == pytest.approx((0.2 + 0.0) / 2)
    masked = mask_atoms(graph, [1])
    assert masked.atoms[1].abs().sum() == 0 and graph.atoms[1].abs().sum() > 0


class GraphModel(torch.nn.Module):
    def __init__(self, plugin: MoleculePlugin):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = plugin.build_encoder({"plugin": {"hidden": 16, "encoder": "mpnn"}})
        self.head = EvidenceHead(self.encoder.out_channels, 1, pool=WildcatPool(1, 1, 1.0))

    def forward(self, inputs):
        return self.head(*self.encoder(inputs))


def test_plugin_atom_faithfulness_matches_a_direct_loop():
    plugin = MoleculePlugin()
    model = GraphModel(plugin).eval()
    graphs = [graph_of(s) for s in ("Oc1ccc(Cl)cc1", "CCN(CC)CC", "CC(=O)O")]
    examples = [Example(g.smiles, g, ()) for g in graphs]
    with torch.no_grad():
        out = model(collate_graphs(graphs))
    maps = list(out.maps)
    result = plugin.evidence_metrics(examples, maps, ["active"], out.scores, model=model)

    def p(graph, sign):
        with torch.no_grad():
            return float(torch.sigmoid(sign * model(collate_graphs([graph])).scores[0, 0]))

    comp, suff = [], []
    for graph, item, score in zip(graphs, maps, out.scores[:, 0], strict=True):
        sign = 1.0 if score > 0 else -1.0
        high, low = atom_evidence(graph, item[0, : len(graph.regions)].numpy())
        order = np.argsort(-(high if sign > 0 else -low), kind="stable")
        n = graph.atoms.shape[0]
        for fraction in (0.01, 0.05, 0.1, 0.2, 0.5):
            top = order[: int(fraction * n)].tolist()
            comp.append(p(graph, sign) - p(mask_atoms(graph, top), sign))
            rest = [a for a in range(n) if a not in top]
            suff.append(p(graph, sign) - p(mask_atoms(graph, rest), sign))
    assert result["atom_comprehensiveness"] == pytest.approx(np.mean(comp), abs=1e-6)
    assert result["atom_sufficiency"] == pytest.approx(np.mean(suff), abs=1e-6)
