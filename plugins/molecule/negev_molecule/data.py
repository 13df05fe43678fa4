"""Datasets of molecules: CSV and SDF readers, and two offline demos built from RDKit's own data.

Every unreadable molecule or label becomes a :class:`~negev.plugins.BadItem` naming the file and
line (or record) and RDKit's reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem, RDConfig

from negev.plugins import BadItem, DataSplits, Example
from negev.plugins.manifest import split_value
from negev.plugins.options import parse_options
from negev.plugins.tables import (
    ID_COLUMNS,
    check_split_column,
    data_file,
    item_name,
    read_csv_rows,
)
from negev_molecule.chem import parse_smiles
from negev_molecule.graph import MolGraph
from negev_molecule.options import MAX_ATOMS, MoleculeOptions

# The rule of the "nci" demo: active = has an aromatic hydroxyl and no halogen (RDKit's
# FragmentDescriptors fr_Ar_OH and fr_halogen). The halogen inhibits: negative evidence.
GROUP_A = ("fr_Ar_OH", "c[OH1]")
GROUP_B = ("fr_halogen", "[#9,#17,#35,#53]")
NCI_FILE = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
CHEMBL_DIR = Path(RDConfig.RDContribDir) / "FreeWilson" / "data"
CHEMBL_THRESHOLD = 7.0  # pIC50 at or above: active


def load(spec: str | None, config: dict[str, Any]) -> DataSplits:
    """A dataset by spec: None or ``demo:nci`` / ``demo:chembl``, a ``.csv`` or an ``.sdf``.

    The file's ``split`` column (option ``split_column``), when it has one, fixes the splits;
    otherwise they are cut 70/15/15 by the seed. When no row can be used the splits are empty and
    every row is in ``bad``, with its reason. ``config["labelled"]`` False (prediction): the
    files' labels and splits are not read (no task columns needed; every example has
    ``labels=()``)."""
    options = parse_options(MoleculeOptions, config.get("plugin") or {}, owner="molecule")
    featurize = Featurizer.of(options)
    builtin = spec is None or spec.startswith("demo:")
    seed = int(config.get("seed", 0))
    if spec is None or spec == "demo:nci":
        examples, bad = nci_demo(featurize, options.demo_size)
    elif spec == "demo:chembl":
        examples, bad = chembl_demo(featurize, options.demo_size)
    elif builtin:
        raise ValueError(f"unknown demo {spec!r}; the demos are demo:nci and demo:chembl")
    else:
        path = data_file(Path(spec))
        reader = read_sdf if path.suffix.lower() in (".sdf", ".sd") else read_csv
        rows, bad, classes = reader(path, options, featurize, config.get("labelled", True))
        if not rows and not bad:
            raise ValueError(f"{path}: no molecule in the file")
        return DataSplits.grouped(rows, classes, True, bad, seed)
    splits = DataSplits.shuffled(examples, ["active"], True, bad, seed)
    splits.builtin = builtin
    return splits


@dataclass(frozen=True)
class Featurizer:
    """Turns a molecule into a :class:`MolGraph` with the regions the plugin options ask for;
    a molecule of more than ``max_atoms`` atoms is refused (ValueError) before its regions are
    computed, so that the time and memory an item takes stay bounded."""

    radius: int = 2
    brics: bool = False
    rings: bool = False
    max_atoms: int = MAX_ATOMS

    @classmethod
    def of(cls, options: MoleculeOptions) -> Featurizer:
        return cls(options.radius, options.brics, options.rings, options.max_atoms)

    def __call__(self, mol: Chem.Mol) -> MolGraph:
        atoms = mol.GetNumAtoms()
        if atoms > self.max_atoms:
            raise ValueError(
                f"{atoms} atoms, over the limit of max_atoms={self.max_atoms} (a plugin option)"
            )
        return MolGraph.from_mol(mol, self.radius, self.brics, self.rings)


def nci_demo(
    featurize: Featurizer = Featurizer(), size: int | None = None
) -> tuple[list[Example], list[BadItem]]:
    """RDKit's NCI sample (4,999 SMILES, 8 of which do not parse; its first ``size`` lines),
    labelled by the A-not-B rule, with the atoms of A and B as ground-truth positive and
    negative evidence."""
    group_a, group_b = Chem.MolFromSmarts(GROUP_A[1]), Chem.MolFromSmarts(GROUP_B[1])
    examples, bad = [], []
    for line_number, line in enumerate(NCI_FILE.read_text().splitlines()[:size], start=1):
        smiles, _, identifier = line.partition("\t")
        name = f"first_5K.smi:{line_number} (NCI {identifier.strip()})"
        try:
            mol = parse_smiles(smiles)
            graph = featurize(mol)
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        atoms_a = {a for match in mol.GetSubstructMatches(group_a) for a in match}
        atoms_b = {a for match in mol.GetSubstructMatches(group_b) for a in match}
        label = (0,) if atoms_a and not atoms_b else ()
        truth = {"positive_atoms": atoms_a, "negative_atoms": atoms_b}
        examples.append(Example(name, graph, label, truth))
    return examples, bad


def chembl_demo(
    featurize: Featurizer = Featurizer(), size: int | None = None
) -> tuple[list[Example], list[BadItem]]:
    """A measured property: ChEMBL series CHEMBL2321810 shipped with RDKit (pIC50), active at
    pIC50 >= 7 (its first ``size`` lines)."""
    activity = {}
    with open(CHEMBL_DIR / "CHEMBL2321810_act.csv", newline="") as file:
        for row in csv.DictReader(file):
            activity[row["Name"]] = float(row["Act"])
    examples, bad = [], []
    lines = (CHEMBL_DIR / "CHEMBL2321810.smi").read_text().splitlines()[:size]
    for line_number, line in enumerate(lines, start=1):
        smiles, _, identifier = line.strip().rpartition(" ")
        name = f"CHEMBL2321810.smi:{line_number} ({identifier})"
        if identifier not in activity:
            bad.append(BadItem(name, f"no activity for {identifier!r}"))
            continue
        try:
            graph = featurize(parse_smiles(smiles))
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        label = (0,) if activity[identifier] >= CHEMBL_THRESHOLD else ()
        examples.append(Example(name, graph, label))
    return examples, bad


def read_csv(path: Path, options: MoleculeOptions, featurize: Featurizer, labelled: bool = True):
    """CSV with a SMILES column (``smiles_column``, default ``smiles``), one 0/1 column per task
    (``label_columns``, default every other column except ``id``/``name`` and the split column)
    and optionally a ``split`` column (``split_column``) of train / val / test; an empty label
    cell is a missing label. Without ``label_columns``, a column whose cells are mostly not 0/1
    (a measured value, a name) is an error that names it and suggests ``label_columns``; a few
    such cells in a 0/1 column are bad rows."""
    column = options.smiles_column
    table = read_csv_rows(path)
    if column not in table.header:
        raise ValueError(
            f"{path}: no SMILES column {column!r} (columns: {', '.join(table.header)}); name it "
            "with smiles_column"
        )
    records = [(item_name(f"{path.name}:{line}", row), row) for line, row in table.rows]
    split_column, tasks = None, []  # prediction: every item, no labels, whatever its split
    if labelled:
        split_column = options.split_column
        check_split_column(split_column, MoleculeOptions.split_column, table.header, path)
        tasks = _tasks(options, table.header, (column, split_column), path, records)
    rows, bad, tasks = _examples(records, tasks, featurize, lambda row: row[column], split_column)
    return rows, table.bad + bad, tasks


def read_sdf(path: Path, options: MoleculeOptions, featurize: Featurizer, labelled: bool = True):
    """SDF with the task labels as 0/1 properties (``label_columns``, default every property
    but the split one) and optionally a ``split`` property (``split_column``)."""
    try:
        supplier = Chem.SDMolSupplier(str(path), sanitize=False)
    except OSError as exc:  # RDKit refuses an empty file
        raise ValueError(f"{path}: RDKit cannot read it as SDF ({exc})") from None
    records, properties = [], set()
    for index, mol in enumerate(supplier, start=1):
        name = f"{path.name}:record {index}"
        if mol is None:
            records.append((name, "RDKit cannot read this record"))
            continue
        try:
            props = mol.GetPropsAsDict()
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            records.append((name, f"a property is not UTF-8 (byte 0x{byte:02x})"))
            continue
        properties.update(props)
        try:
            title = {"_Name": mol.GetProp("_Name")} if mol.HasProp("_Name") else {}
        except UnicodeDecodeError:  # a title that is not UTF-8 names nothing: the record only
            title = {}
        records.append(
            (item_name(name, title), {"_mol": mol, **{k: str(v) for k, v in props.items()}})
        )
    split_column, tasks = None, []  # prediction: every item, no labels, whatever its split
    if labelled:
        split_column = options.split_column
        if records:
            check_split_column(split_column, MoleculeOptions.split_column, sorted(properties), path)
        tasks = _tasks(options, sorted(properties), (split_column,), path, records)

    def smiles_of(row: dict) -> str:
        return Chem.MolToSmiles(row["_mol"])

    return _examples(records, tasks, featurize, smiles_of, split_column)


_BINARY = re.compile(r"\+?([01])(\.0*)?|(true|false)", re.IGNORECASE | re.ASCII)


def _label(value: str) -> bool | None:
    """A label cell: True for 1 / true (any case, ``1.00`` too), False for 0 / false, None
    for anything else."""
    match = _BINARY.fullmatch(value.strip())
    if match is None:
        return None
    return match.group(1) == "1" if match.group(1) else match.group(3).lower() == "true"


def _tasks(options, header, reserved, path, records) -> list[str]:
    """The label columns: ``label_columns`` as given, or every column but the reserved ones and
    ``id``/``name``, each of which must then hold mostly 0/1/empty."""
    tasks = list(options.label_columns)
    if tasks:
        missing = [t for t in tasks if t not in header]
        if missing:
            raise ValueError(
                f"{path}: label columns {missing} not found (columns: {', '.join(header)})"
            )
        return list(tasks)
    tasks = [h for h in header if h not in reserved and h.lower() not in ID_COLUMNS]
    if not tasks:
        raise ValueError(f"{path}: no label column (columns: {', '.join(header)})")
    for task in tasks:  # most cells not 0/1: not a label column (a few: bad rows, reported)
        cells = [(name, _cell(row, task)) for name, row in records]
        odd = [(name, value) for name, value in cells if value and _label(value) is None]
        if odd and 2 * len(odd) > sum(value != "" for _, value in cells):
            labels = [t for t in tasks if t != task] or ["<the 0/1 columns>"]
            raise ValueError(
                f"{path}: column {task!r} is not a 0/1 label column ({odd[0][0]} holds "
                f"{odd[0][1][:40]!r}; a label is 0, 1, true, false or empty). If it is not a "
                f"label column, name those that are with label_columns, e.g. "
                f"--set label_columns={','.join(labels)}"
            )
    return tasks


def _cell(row: dict | str, column: str) -> str:
    value = row.get(column) if isinstance(row, dict) else None
    return "" if value is None else str(value).strip()


def _examples(records, tasks, featurize, smiles_of, split_column: str | None):
    """(split, Example) per usable record (split None without a split column, or for
    ``split_column`` None), the bad records, the task names. A record without the split
    column, when others have it, is bad."""
    has_split = split_column is not None and any(
        isinstance(row, dict) and split_column in row for _, row in records
    )
    rows, bad = [], []
    for name, row in records:
        if isinstance(row, str):
            bad.append(BadItem(name, row))
            continue
        try:
            split = split_value(row.get(split_column), split_column) if has_split else None
            graph = featurize(parse_smiles(smiles_of(row)))
            labels, unknown = [], []
            for t, task in enumerate(tasks):
                value = (row.get(task) or "").strip()
                if value == "":
                    unknown.append(t)
                elif (label := _label(value)) is None:
                    raise ValueError(
                        f"label {value!r} in column {task!r} is not 0, 1, true, false or empty"
                    )
                elif label:
                    labels.append(t)
        except ValueError as exc:
            bad.append(BadItem(name, str(exc)))
            continue
        rows.append((split, Example(name, graph, tuple(labels), unknown=tuple(unknown))))
    return rows, bad, tasks


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
