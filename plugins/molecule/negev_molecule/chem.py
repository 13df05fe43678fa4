"""RDKit side: parsing with reasons, substructure regions, atom and bond features."""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS

RDLogger.DisableLog("rdApp.*")  # parse errors are reported by us, with the item's name

ELEMENTS = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P", "B", "Si", "Se", "Na", "K")
BOND_TYPES = (
    Chem.BondType.SINGLE,
    Chem.BondType.DOUBLE,
    Chem.BondType.TRIPLE,
    Chem.BondType.AROMATIC,
)
HYBRIDIZATIONS = (
    Chem.HybridizationType.SP,
    Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3,
)
ATOM_FEATURES = len(ELEMENTS) + 1 + 6 + 3 + 4 + len(HYBRIDIZATIONS) + 2


@dataclass(frozen=True)
class Region:
    """A substructure: its kind (``env0``, ``env1``, ..., ``ring``, ``ringsystem``, ``brics``),
    its atoms, and a SMILES of the fragment."""

    kind: str
    atoms: tuple[int, ...]
    smiles: str


def parse_smiles(smiles: str) -> Chem.Mol:
    """A sanitized molecule; ``ValueError`` with RDKit's reason when it cannot be."""
    text = smiles.strip()
    if not text:
        raise ValueError("empty SMILES")
    mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        raise ValueError(f"SMILES {text!r} does not parse")
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several sanitization error types
        raise ValueError(f"SMILES {text!r} cannot be sanitized: {exc}") from None
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES {text!r} has no atom")
    return mol


def regions(mol: Chem.Mol, radius: int = 2, brics: bool = False) -> list[Region]:
    """Substructure regions: atom-centred environments of radius 0..``radius`` (as in Morgan
    fingerprints), rings, fused ring systems and, optionally, BRICS fragments. Duplicates (the
    same atom set and kind) are kept once."""
    found: dict[tuple[str, tuple[int, ...]], Region] = {}

    def add(kind: str, atoms: set[int]) -> None:
        key = (kind, tuple(sorted(atoms)))
        if atoms and key not in found:
            smiles = Chem.MolFragmentToSmiles(mol, atomsToUse=list(key[1]), canonical=True)
            found[key] = Region(kind, key[1], smiles)

    for atom in mol.GetAtoms():
        center = atom.GetIdx()
        add("env0", {center})
        for r in range(1, radius + 1):
            bonds = Chem.FindAtomEnvironmentOfRadiusN(mol, r, center)
            atoms = {center}
            for bond_index in bonds:
                bond = mol.GetBondWithIdx(bond_index)
                atoms.update((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
            if len(atoms) > 1:
                add(f"env{r}", atoms)
    rings = [set(ring) for ring in mol.GetRingInfo().AtomRings()]
    for ring in rings:
        add("ring", ring)
    for system in _ring_systems(rings):
        if system not in rings:
            add("ringsystem", system)
    if brics:
        pieces = Chem.GetMolFrags(BRICS.BreakBRICSBonds(mol), asMols=False)
        for piece in pieces:
            add("brics", {a for a in piece if a < mol.GetNumAtoms()})
    return list(found.values())


def _ring_systems(rings: list[set[int]]) -> list[set[int]]:
    systems: list[set[int]] = []
    for ring in rings:
        merged = set(ring)
        for system in [s for s in systems if s & ring]:
            merged |= system
            systems.remove(system)
        systems.append(merged)
    return systems


def atom_features(atom: Chem.Atom) -> list[float]:
    """One-hot element (+ other), degree (0-5), hybridization, charge/aromatic/ring flags."""
    element = [float(atom.GetSymbol() == e) for e in ELEMENTS]
    element.append(float(atom.GetSymbol() not in ELEMENTS))
    degree = [float(atom.GetDegree() == d) for d in range(6)]
    hydrogens = [float(min(atom.GetTotalNumHs(), 2) == h) for h in range(3)]
    charge = [float(atom.GetFormalCharge() < 0), float(atom.GetFormalCharge() > 0)]
    flags = [float(atom.GetIsAromatic()), float(atom.IsInRing())]
    hybrid = [float(atom.GetHybridization() == h) for h in HYBRIDIZATIONS]
    return (
        element + degree + hydrogens + charge + flags + hybrid + [1.0, float(atom.GetMass() / 100)]
    )


def bond_type_index(bond: Chem.Bond) -> int:
    kind = bond.GetBondType()
    return BOND_TYPES.index(kind) if kind in BOND_TYPES else 0
