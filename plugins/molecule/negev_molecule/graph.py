"""A molecule prepared once for training: atom features, bonds by type, regions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rdkit import Chem
from torch import Tensor

from negev_molecule.chem import BOND_TYPES, Region, atom_features, bond_type_index, regions


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
    """Pad a batch of molecules.

    Returns:
        atoms (B, A, F), atom_mask (B, A) bool, adjacency (B, T, A, A) (one matrix per bond
        type, symmetric), membership (B, R, A) (row r averages the atoms of region r),
        region_mask (B, R) bool, identifiers (B, R) int64 (0 past the last region).
    """
    batch = len(graphs)
    most_atoms = max(g.atoms.shape[0] for g in graphs)
    most_regions = max(len(g.regions) for g in graphs)
    features = graphs[0].atoms.shape[1]
    atoms = torch.zeros(batch, most_atoms, features)
    atom_mask = torch.zeros(batch, most_atoms, dtype=torch.bool)
    adjacency = torch.zeros(batch, len(BOND_TYPES), most_atoms, most_atoms)
    membership = torch.zeros(batch, most_regions, most_atoms)
    region_mask = torch.zeros(batch, most_regions, dtype=torch.bool)
    identifiers = torch.zeros(batch, most_regions, dtype=torch.long)
    for b, graph in enumerate(graphs):
        n = graph.atoms.shape[0]
        atoms[b, :n] = graph.atoms
        atom_mask[b, :n] = True
        if graph.bonds.numel():
            begin, end, kind = graph.bonds.unbind(1)
            adjacency[b, kind, begin, end] = 1.0
            adjacency[b, kind, end, begin] = 1.0
        for r, region in enumerate(graph.regions):
            membership[b, r, list(region.atoms)] = 1.0 / len(region.atoms)
        region_mask[b, : len(graph.regions)] = True
        identifiers[b, : len(graph.regions)] = graph.identifiers
    return {
        "atoms": atoms,
        "atom_mask": atom_mask,
        "adjacency": adjacency,
        "membership": membership,
        "region_mask": region_mask,
        "identifiers": identifiers,
    }
