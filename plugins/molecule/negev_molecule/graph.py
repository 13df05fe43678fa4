"""A molecule prepared once for training: atom features, bonds by type, regions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rdkit import Chem
from torch import Tensor

from negev_molecule.chem import Region, atom_features, bond_type_index, regions


@dataclass
class MolGraph:
    """Tensors of one molecule.

    Attributes:
        smiles: canonical SMILES. atoms: (A, F) float atom features.
        bonds: (E, 3) int64 rows (begin, end, bond type index).
        regions: the substructures; region r covers ``regions[r].atoms``.
        identifiers: (R,) int64 identifier of each region (its unfolded Morgan identifier for an
            atom environment, see :class:`~negev_molecule.chem.Region`), for the hashed encoders.
    """

    smiles: str
    atoms: Tensor
    bonds: Tensor
    regions: list[Region]
    identifiers: Tensor

    @classmethod
    def from_mol(
        cls, mol: Chem.Mol, radius: int = 2, brics: bool = False, rings: bool = True
    ) -> MolGraph:
        subs = regions(mol, radius=radius, brics=brics, rings=rings)
        bonds = [
            (b.GetBeginAtomIdx(), b.GetEndAtomIdx(), bond_type_index(b)) for b in mol.GetBonds()
        ]
        return cls(
            smiles=Chem.MolToSmiles(mol),
            atoms=torch.tensor([atom_features(a) for a in mol.GetAtoms()], dtype=torch.float32),
            bonds=torch.tensor(bonds, dtype=torch.long).reshape(-1, 3),
            regions=subs,
            identifiers=torch.tensor([r.identifier for r in subs], dtype=torch.long),
        )


def collate_graphs(graphs: list[MolGraph]) -> dict[str, Tensor]:
    """Batch molecules as one sparse graph: the atoms of every molecule one after another, bonds
    and region memberships as index lists, so that memory grows with the atoms, bonds and
    regions of the batch (never with the square of its largest molecule). Only the region
    outputs are padded, to the most regions of a molecule (R).

    Returns:
        atoms (N, F) float32, N the atoms of the batch; bonds (2, E) int64 (source, target)
        rows of ``atoms``, every bond in both directions; bond_types (E,) int64 (index into
        :data:`~negev_molecule.chem.BOND_TYPES`); members (2, M) int64 (region slot
        ``b * R + r``, atom row) for each atom of each region; member_weights (M,) float32
        (1 / the region's atom count: a region averages its atoms); region_mask (B, R) bool;
        identifiers (B, R) int64 (0 past the last region).
    """
    most_regions = max(len(g.regions) for g in graphs)
    region_mask = torch.zeros(len(graphs), most_regions, dtype=torch.bool)
    identifiers = torch.zeros(len(graphs), most_regions, dtype=torch.long)
    bonds, kinds = [], []
    slots: list[int] = []
    members: list[int] = []
    weights: list[float] = []
    offset = 0
    for b, graph in enumerate(graphs):
        begin, end, kind = (graph.bonds + torch.tensor([offset, offset, 0])).unbind(1)
        bonds.append(torch.stack([torch.cat([begin, end]), torch.cat([end, begin])]))
        kinds.append(torch.cat([kind, kind]))
        for r, region in enumerate(graph.regions):
            slots += [b * most_regions + r] * len(region.atoms)
            members += [atom + offset for atom in region.atoms]
            weights += [1.0 / len(region.atoms)] * len(region.atoms)
        region_mask[b, : len(graph.regions)] = True
        identifiers[b, : len(graph.regions)] = graph.identifiers
        offset += graph.atoms.shape[0]
    return {
        "atoms": torch.cat([g.atoms for g in graphs]),
        "bonds": torch.cat(bonds, 1),
        "bond_types": torch.cat(kinds),
        "members": torch.tensor([slots, members], dtype=torch.long).reshape(2, -1),
        "member_weights": torch.tensor(weights, dtype=torch.float32),
        "region_mask": region_mask,
        "identifiers": identifiers,
    }
