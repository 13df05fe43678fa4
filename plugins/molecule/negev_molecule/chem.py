"""RDKit side: parsing with reasons, substructure regions, atom and bond features."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS, rdFingerprintGenerator

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
    its atoms, a SMILES of the fragment, and its identifier: for ``env<r>`` the unfolded Morgan
    identifier (``id % n`` is its bit in RDKit's Morgan fingerprint of size n), for the other
    kinds the CRC-32 of ``kind:smiles``."""

    kind: str
    atoms: tuple[int, ...]
    smiles: str
    identifier: int


def parse_smiles(smiles: str) -> Chem.Mol:
    """A sanitized molecule without explicit hydrogen atoms (``[H]O`` is ``O``, as RDKit's
    default parse gives it: one molecule, one set of regions, however it is written), its atoms
    numbered as in its canonical SMILES (``MolGraph.smiles``, which the drawings and
    ``atoms.jsonl`` parse again: atom i there is atom i of the graph's evidence);
    ``ValueError`` with RDKit's reason when it cannot be. A SMILES holding a space is refused:
    RDKit would read what follows the space as a name and drop it."""
    text = smiles.strip()
    if not text:
        raise ValueError("empty SMILES")
    if any(character.isspace() for character in text):
        raise ValueError(
            f"SMILES {text!r} holds a space: RDKit would read {text.split()[-1]!r} as a name and "
            "drop it (a SMILES has no spaces; a mixture is written with '.')"
        )
    mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        raise ValueError(f"SMILES {text!r} does not parse")
    try:
        Chem.SanitizeMol(mol)
        mol = Chem.RemoveHs(mol)
    except Exception as exc:  # RDKit raises several sanitization error types
        raise ValueError(f"SMILES {text!r} cannot be sanitized: {exc}") from None
    Chem.MolToSmiles(mol)  # sets the canonical atom order
    mol = Chem.RenumberAtoms(mol, list(mol.GetProp("_smilesAtomOutputOrder", autoConvert=True)))
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES {text!r} has no atom")
    return mol


def regions(
    mol: Chem.Mol, radius: int = 2, brics: bool = False, rings: bool = True
) -> list[Region]:
    """Substructure regions: the atom environments of RDKit's Morgan fingerprint of ``radius``
    (one region per environment it counts: every atom at radius 0, then each new environment of
    radius 1..``radius``; RDKit drops an environment that covers the same bonds as one already
    counted), then, with ``rings``, the rings and fused ring systems (each once) and, with
    ``brics``, the BRICS fragments.

    The environment regions are exactly what the Morgan count fingerprint counts: the number of
    ``env`` regions whose ``identifier % n == i`` is bit i of the count fingerprint of size n."""
    found: list[Region] = []
    info = rdFingerprintGenerator.AdditionalOutput()
    info.AllocateBitInfoMap()
    _morgan(radius).GetSparseCountFingerprint(mol, additionalOutput=info)
    centred = sorted(
        (r, center, identifier)
        for identifier, places in info.GetBitInfoMap().items()
        for center, r in places
    )
    for r, center, identifier in centred:
        atoms = {center}
        for bond_index in Chem.FindAtomEnvironmentOfRadiusN(mol, r, center):
            bond = mol.GetBondWithIdx(bond_index)
            atoms.update((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        found.append(_region(mol, f"env{r}", atoms, identifier))
    seen: set[tuple[str, tuple[int, ...]]] = set()

    def add(kind: str, atoms: set[int]) -> None:
        key = (kind, tuple(sorted(atoms)))
        if atoms and key not in seen:
            seen.add(key)
            found.append(_region(mol, kind, atoms))

    if rings:
        ring_sets = [set(ring) for ring in mol.GetRingInfo().AtomRings()]
        for ring in ring_sets:
            add("ring", ring)
        for system in _ring_systems(ring_sets):
            if system not in ring_sets:
                add("ringsystem", system)
    if brics:
        pieces = Chem.GetMolFrags(BRICS.BreakBRICSBonds(mol), asMols=False)
        for piece in pieces:
            add("brics", {a for a in piece if a < mol.GetNumAtoms()})
    return found


@functools.lru_cache(maxsize=8)
def _morgan(radius: int):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius)


def _region(mol: Chem.Mol, kind: str, atoms: set[int], identifier: int | None = None) -> Region:
    ordered = tuple(sorted(atoms))
    smiles = Chem.MolFragmentToSmiles(mol, atomsToUse=list(ordered), canonical=True)
    if identifier is None:
        identifier = zlib.crc32(f"{kind}:{smiles}".encode())
    return Region(kind, ordered, smiles, int(identifier))


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
