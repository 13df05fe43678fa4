"""The sparse message-passing encoder against the dense (atoms x atoms) computation it replaced,
and the per-molecule size limit."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from negev_molecule import data
from negev_molecule.chem import ATOM_FEATURES, BOND_TYPES, Region
from negev_molecule.encoders import MessagePassingEncoder
from negev_molecule.graph import MolGraph, collate_graphs


def dense_reference(encoder: MessagePassingEncoder, graphs: list[MolGraph]) -> torch.Tensor:
    """The former computation, molecule by molecule: h <- relu(W_self h + sum_t A_t h W_t)
    with dense (T, A, A) symmetric adjacency, regions = a dense (R, A) averaging matrix times h;
    padded to the most regions. Returns (B, hidden, R)."""
    most = max(len(g.regions) for g in graphs)
    out = torch.zeros(len(graphs), encoder.out_channels, most, dtype=torch.float64)
    for b, graph in enumerate(graphs):
        n = graph.atoms.shape[0]
        adjacency = torch.zeros(len(BOND_TYPES), n, n, dtype=torch.float64)
        for begin, end, kind in graph.bonds.tolist():
            adjacency[kind, begin, end] = adjacency[kind, end, begin] = 1.0
        state = torch.relu(encoder.embed(graph.atoms.double()))
        for own, by_bond in zip(encoder.self_weights, encoder.bond_weights, strict=True):
            messages = by_bond(state).view(n, len(BOND_TYPES), -1).transpose(0, 1)
            state = torch.relu(own(state) + (adjacency @ messages).sum(0))
        membership = torch.zeros(len(graph.regions), n, dtype=torch.float64)
        for r, region in enumerate(graph.regions):
            membership[r, list(region.atoms)] = 1.0 / len(region.atoms)
        out[b, :, : len(graph.regions)] = (membership @ state).T
    return out


@st.composite
def random_graph(draw) -> MolGraph:
    """A random graph: atoms with random features, distinct bonds of random types (no self
    bond), regions of random non-empty atom sets."""
    n = draw(st.integers(1, 9))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=12)) if pairs else []
    kinds = draw(st.lists(st.integers(0, len(BOND_TYPES) - 1), min_size=len(chosen),
                          max_size=len(chosen)))  # fmt: skip
    regions = draw(st.lists(st.sets(st.integers(0, n - 1), min_size=1), min_size=1, max_size=7))
    seed = draw(st.integers(0, 2**31 - 1))
    atoms = torch.randn(n, ATOM_FEATURES, generator=torch.Generator().manual_seed(seed))
    bonds = torch.tensor([(i, j, k) for (i, j), k in zip(chosen, kinds, strict=True)],
                         dtype=torch.long).reshape(-1, 3)  # fmt: skip
    found = [Region("env0", tuple(sorted(r)), "C", i) for i, r in enumerate(regions)]
    return MolGraph("C", atoms, bonds, found, torch.arange(len(found)))


@settings(max_examples=25, deadline=None)
@given(st.lists(random_graph(), min_size=1, max_size=4), st.integers(1, 3))
def test_sparse_message_passing_equals_the_dense_computation(graphs, layers):
    torch.manual_seed(layers)
    encoder = MessagePassingEncoder(8, layers)
    features, mask = encoder(collate_graphs(graphs))
    assert mask.sum(1).tolist() == [len(g.regions) for g in graphs]
    torch.testing.assert_close(
        features.double(), dense_reference(encoder.double(), graphs), atol=1e-5, rtol=1e-4
    )


def test_batch_memory_grows_with_atoms_not_their_square():
    n = 5000  # a chain of n atoms, one region per atom and per bond
    bonds = torch.tensor([(i, i + 1, 0) for i in range(n - 1)])
    regions = [Region("env0", (i,), "C", i) for i in range(n)]
    regions += [Region("env1", (i, i + 1), "CC", n + i) for i in range(n - 1)]
    chain = MolGraph("C", torch.randn(n, ATOM_FEATURES), bonds, regions, torch.arange(2 * n - 1))
    small = MolGraph.from_mol(data.parse_smiles("CCO"))
    batch = collate_graphs([chain, small])
    largest = max(t.numel() for t in batch.values())
    assert largest < 50 * n  # dense adjacency alone held 4 x 5000^2 = 100 million numbers
    features, _ = MessagePassingEncoder(4, 1)(batch)
    assert features.shape == (2, 4, len(regions))


def test_a_molecule_over_max_atoms_is_a_bad_item(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("smiles,active\nCCO,1\n" + "C" * 60 + ",0\nCCN,0\n")
    splits = data.load(str(path), {"plugin": {"max_atoms": 50}})
    assert [(b.name, b.reason) for b in splits.bad] == [
        ("big.csv:3", "60 atoms, over the limit of max_atoms=50 (a plugin option)")
    ]
    assert len(splits.train + splits.val + splits.test) == 2
    with pytest.raises(ValueError, match="max_atoms must be >= 1"):
        data.load(str(path), {"plugin": {"max_atoms": 0}})
