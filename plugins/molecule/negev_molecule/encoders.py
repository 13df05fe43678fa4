"""Region encoders: a hashed embedding of each region's Morgan environment (the default), and a
message-passing network over the molecular graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.plugins import RegionEncoder
from negev_molecule.chem import ATOM_FEATURES, BOND_TYPES


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


class HashedEnvironmentEncoder(RegionEncoder):
    """Each region is its identifier hashed into ``buckets`` rows of an embedding: for an atom
    environment, its bit in the Morgan fingerprint of ``buckets`` bits.

    With a linear head the score of region r is ``w . E[id_r % buckets] + b``, one number per
    bit, so average pooling gives ``(1/R) sum_i count_i s_i + b``: a linear model on the
    (length-normalised) Morgan count fingerprint. Poolings that also read the extreme regions add
    to that model. Input ``identifiers`` (B, R) int64 and ``region_mask`` (B, R) bool; output
    (B, dim, R) and the mask.
    """

    def __init__(self, buckets: int = 2048, dim: int = 32):
        super().__init__()
        self.buckets = buckets
        self.bits = nn.Embedding(buckets, dim)
        # Zeros: the model starts as the constant one, and an environment never seen in training
        # scores 0 (as in a linear model) instead of a random value that is never trained away.
        nn.init.zeros_(self.bits.weight)
        self.out_channels = dim

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        rows = inputs["identifiers"] % self.buckets
        return self.bits(rows).transpose(1, 2), inputs["region_mask"]
