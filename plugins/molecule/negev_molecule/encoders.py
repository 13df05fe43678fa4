"""Region encoders: a message-passing network over the molecular graph, and a fingerprint
baseline (hashed substructure bits)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.plugins import RegionEncoder
from negev_molecule.chem import ATOM_FEATURES, BOND_TYPES
from negev_molecule.graph import FINGERPRINT_BUCKETS


class MessagePassingEncoder(RegionEncoder):
    """Atom states by message passing (one weight matrix per bond type), averaged into regions.

    ``h <- relu(W_self h + sum_t A_t h W_t)``, ``layers`` times; a region's feature is the mean
    state of its atoms. Output: (B, hidden, R) and the region mask (B, R).
    """

    def __init__(self, hidden: int = 64, layers: int = 3):
        super().__init__()
        self.embed = nn.Linear(ATOM_FEATURES, hidden)
        self.self_weights = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.bond_weights = nn.ModuleList(
            nn.Linear(hidden, hidden * len(BOND_TYPES), bias=False) for _ in range(layers)
        )
        self.out_channels = hidden

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        keep = inputs["atom_mask"].unsqueeze(2).float()
        adjacency = inputs["adjacency"]  # (B, T, A, A)
        state = torch.relu(self.embed(inputs["atoms"])) * keep
        for own, by_bond in zip(self.self_weights, self.bond_weights, strict=True):
            batch, atoms, hidden = state.shape
            messages = by_bond(state).view(batch, atoms, len(BOND_TYPES), hidden).transpose(1, 2)
            received = (adjacency @ messages).sum(1)  # (B, A, hidden)
            state = torch.relu(own(state) + received) * keep
        regions = inputs["membership"] @ state  # (B, R, hidden)
        return regions.transpose(1, 2), inputs["region_mask"]


class FingerprintEncoder(RegionEncoder):
    """Each region is its hashed substructure bit (kind + fragment SMILES), embedded."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.bits = nn.Embedding(FINGERPRINT_BUCKETS, hidden)
        self.out_channels = hidden

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.bits(inputs["buckets"]).transpose(1, 2), inputs["region_mask"]
