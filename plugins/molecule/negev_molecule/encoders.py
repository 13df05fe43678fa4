"""Region encoders: a hashed embedding of each region's Morgan environment (the default), and a
message-passing network over the molecular graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from negev.plugins import RegionEncoder
from negev_molecule.chem import ATOM_FEATURES, BOND_TYPES


class MessagePassingEncoder(RegionEncoder):
    """Atom states by message passing (one weight matrix per bond type), averaged into regions.

    ``h_i <- relu(W_self h_i + sum_t sum_{j ~t i} W_t h_j)`` (j ~t i: j bonded to i by a bond of
    type t), ``layers`` times; a region's feature is the mean state of its atoms. Sparse: the
    sums run over the bond and membership lists of :func:`~negev_molecule.graph.collate_graphs`
    (``index_add``), so memory grows with atoms and bonds, not atoms squared. Output:
    (B, hidden, R) and the region mask (B, R).
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
        source, target = inputs["bonds"]
        kinds = inputs["bond_types"]
        state = torch.relu(self.embed(inputs["atoms"]))  # (N, hidden)
        for own, by_bond in zip(self.self_weights, self.bond_weights, strict=True):
            messages = by_bond(state).unflatten(1, (len(BOND_TYPES), -1))  # (N, T, hidden)
            received = torch.zeros_like(state).index_add_(0, target, messages[source, kinds])
            state = torch.relu(own(state) + received)
        mask = inputs["region_mask"]
        slot, atom = inputs["members"]
        weighted = state[atom] * inputs["member_weights"].unsqueeze(1).to(state.dtype)
        regions = state.new_zeros(mask.numel(), state.shape[1]).index_add_(0, slot, weighted)
        return regions.view(*mask.shape, -1).transpose(1, 2), mask


class HashedEnvironmentEncoder(RegionEncoder):
    """Each region is its identifier hashed into ``buckets`` rows of an embedding: for an atom
    environment, its bit in the Morgan fingerprint of ``buckets`` bits.

    With a linear head the score of region r is ``w . E[id_r % buckets] + b``, one number per
    bit, so sum pooling gives ``sum_i count_i s_i``: a linear model on the Morgan count
    fingerprint (average pooling: on the length-normalised one). Poolings that also read the
    extreme regions add to that model (``sumwildcat``, whose linear term the engine fits
    convexly before training: :mod:`negev.engine.warm_start`). Input ``identifiers`` (B, R)
    int64 and ``region_mask`` (B, R) bool; output (B, dim, R) and the mask.
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
        rows, mask = self.region_rows(inputs)
        return self.bits(rows).transpose(1, 2), mask

    def row_table(self) -> Tensor:
        """The embedding (buckets, dim): a region's feature is its row (the linear path)."""
        return self.bits.weight

    def region_rows(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, R) each region's bit (its identifier modulo ``buckets``), and the region mask."""
        return inputs["identifiers"] % self.buckets, inputs["region_mask"]
