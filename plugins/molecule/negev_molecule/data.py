"""Datasets of molecules: CSV and SDF readers, and two offline demos built from RDKit's own data.

Every unreadable molecule or label becomes a :class:`~negev.plugins.BadItem` naming the file and
line (or record) and RDKit's reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem, RDConfig

from negev.plugins import BadItem, DataSplits, Example
from negev_molecule.chem import parse_smiles
from negev_molecule.graph import MolGraph

# The rule of the "nci" demo: active = has an aromatic hydroxyl and no halogen (RDKit's
# FragmentDescriptors fr_Ar_OH and fr_halogen). The halogen inhibits: negative evidence.
GROUP_A = ("fr_Ar_OH", "c[OH1]")
GROUP_B = ("fr_halogen", "[#9,#17,#35,#53]")
NCI_FILE = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
CHEMBL_DIR = Path(RDConfig.RDContribDir) / "FreeWilson" / "data"
CHEMBL_THRESHOLD = 7.0  # pIC50 at or above: active


def load(spec: str | None, config: dict[str, Any]) -> DataSplits:
    """A dataset by spec: None or ``demo:nci`` / ``demo:chembl``, a ``.csv`` or an ``.sdf``."""
    options = config.get("plugin", {})
    radius, brics = int(options.get("radius", 2)), bool(options.get("brics", False))
    builtin = spec is None or spec.startswith("demo:")
    if spec is None or spec == "demo:nci":
        examples, bad = nci_demo(radius, brics)
        classes = ["active"]
    elif spec == "demo:chembl":
        examples, bad = chembl_demo(radius, brics)
        classes = ["active"]
    elif builtin:
        raise ValueError(f"unknown demo {spec!r}; the demos are demo:nci and demo:chembl")
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
        reader = read_sdf if path.suffix.lower() in (".sdf", ".sd") else read_csv
        examples, bad, classes = reader(path, options, radius, brics)
    if not examples:
        raise ValueError(f"no readable molecule in {spec or 'the demo data'}")
    splits = DataSplits.shuffled(examples, classes, True, bad, int(config.get("seed", 0)))
    splits.builtin = builtin
    return splits


def nci_demo(radius: int = 2, brics: bool = False) -> tuple[list[Example], list[BadItem]]:
    """RDKit's NCI sample (4,999 SMILES, 8 of which do not parse), labelled by the A-not-B rule,
    with the atoms of A and B as ground-truth positive and negative evidence."""
    group_a, group_b = Chem.MolFromSmarts(GROUP_A[1]), Chem.MolFromSmarts(GROUP_B[1])
    examples, bad = [], []
    for line_number, line in enumerate(NCI_FILE.read_text().splitlines(), start=1):
        smiles, _, identifier = line.partition("\t")
        name = f"first_5K.smi:{line_number} (NCI {identifier.strip()})"
        try:
            mol = parse_smiles(smiles)
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        atoms_a = {a for match in mol.GetSubstructMatches(group_a) for a in match}
        atoms_b = {a for match in mol.GetSubstructMatches(group_b) for a in match}
        label = (0,) if atoms_a and not atoms_b else ()
        truth = {"positive_atoms": atoms_a, "negative_atoms": atoms_b}
        examples.append(Example(name, MolGraph.from_mol(mol, radius, brics), label, truth))
    return examples, bad


def chembl_demo(radius: int = 2, brics: bool = False) -> tuple[list[Example], list[BadItem]]:
    """A measured property: ChEMBL series CHEMBL2321810 shipped with RDKit (pIC50), active at
    pIC50 >= 7."""
    activity = {}
    with open(CHEMBL_DIR / "CHEMBL2321810_act.csv", newline="") as file:
        for row in csv.DictReader(file):
            activity[row["Name"]] = float(row["Act"])
    examples, bad = [], []
    lines = (CHEMBL_DIR / "CHEMBL2321810.smi").read_text().splitlines()
    for line_number, line in enumerate(lines, start=1):
        smiles, _, identifier = line.strip().rpartition(" ")
        name = f"CHEMBL2321810.smi:{line_number} ({identifier})"
        if identifier not in activity:
            bad.append(BadItem(name, f"no activity for {identifier!r}"))
            continue
        try:
            mol = parse_smiles(smiles)
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        label = (0,) if activity[identifier] >= CHEMBL_THRESHOLD else ()
        examples.append(Example(name, MolGraph.from_mol(mol, radius, brics), label))
    return examples, bad


def read_csv(path: Path, options: dict[str, Any], radius: int, brics: bool):
    """CSV with a SMILES column (``smiles_column``, default ``smiles``) and one 0/1 column per
    task (``label_columns``, default every other column except ``id``/``name``); an empty cell
    is a missing label."""
    column = options.get("smiles_column", "smiles")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        if column not in header:
            raise ValueError(f"{path}: no SMILES column {column!r} (columns: {', '.join(header)})")
        tasks = _tasks(options, header, column, path)
        records = [(f"{path.name}:{n}", row) for n, row in enumerate(reader, start=2)]
    return _examples(records, column, tasks, radius, brics, smiles_of=lambda row: row[column])


def read_sdf(path: Path, options: dict[str, Any], radius: int, brics: bool):
    """SDF with the task labels as 0/1 properties (``label_columns``, default every property)."""
    supplier = Chem.SDMolSupplier(str(path), sanitize=False)
    records, properties = [], set()
    for index, mol in enumerate(supplier, start=1):
        name = f"{path.name}:record {index}"
        if mol is None:
            records.append((name, None))
            continue
        props = mol.GetPropsAsDict()
        properties.update(props)
        records.append((name, {"_mol": mol, **{k: str(v) for k, v in props.items()}}))
    tasks = _tasks(options, sorted(properties), None, path)

    def smiles_of(row: dict) -> str:
        return Chem.MolToSmiles(row["_mol"])

    return _examples(records, None, tasks, radius, brics, smiles_of)


def _tasks(options, header, smiles_column, path) -> list[str]:
    tasks = options.get("label_columns")
    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t]
    tasks = tasks or [h for h in header if h not in (smiles_column, "id", "name", "_Name")]
    missing = [t for t in tasks if t not in header]
    if missing or not tasks:
        raise ValueError(f"{path}: label columns {missing or '(none)'} not found")
    return list(tasks)


def _examples(records, column, tasks, radius, brics, smiles_of):
    examples, bad = [], []
    for name, row in records:
        if row is None:
            bad.append(BadItem(name, "RDKit cannot read this record"))
            continue
        try:
            mol = parse_smiles(smiles_of(row))
            labels, unknown = [], []
            for t, task in enumerate(tasks):
                value = (row.get(task) or "").strip()
                if value == "":
                    unknown.append(t)
                elif value in ("1", "1.0", "True", "true"):
                    labels.append(t)
                elif value not in ("0", "0.0", "False", "false"):
                    raise ValueError(f"label {value!r} in column {task!r} is not 0, 1 or empty")
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        graph = MolGraph.from_mol(mol, radius, brics)
        examples.append(Example(name, graph, tuple(labels), unknown=tuple(unknown)))
    return examples, bad, tasks


def atom_evidence(graph: MolGraph, region_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom positive evidence (max over the regions that hold the atom) and negative
    evidence (min over them), from one class's region scores (R,)."""
    n_atoms = graph.atoms.shape[0]
    high = np.full(n_atoms, -np.inf)
    low = np.full(n_atoms, np.inf)
    for region, value in zip(graph.regions, region_map, strict=False):
        for atom in region.atoms:
            high[atom] = max(high[atom], value)
            low[atom] = min(low[atom], value)
    return high, low
