"""The molecule plugin on its demos: poolings on the A-not-B rule, and real labels vs a baseline.

1. ``demo:nci`` (RDKit's NCI sample, active = aromatic OH and no halogen): each pooling trained
   with the same budget; test ROC-AUC and mAP, atom-level AUPRC of the positive evidence (atoms
   of the aromatic OH) and of the negative evidence (the halogen atoms), train time.
2. ``demo:chembl`` (ChEMBL series CHEMBL2321810 shipped with RDKit, active at pIC50 >= 7):
   test ROC-AUC of max+min against Morgan fingerprints + logistic regression (scikit-learn) on
   the same split.

Run:  python -m benchmarks.molecule_demo [--epochs 12]
Writes benchmarks/results/molecule.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmarks._runs import train_and_measure, write_lines
from negev.engine import resolve_config
from negev.engine.trainer import prepare_data

POOLINGS = {
    "max": {"pooling": "max"},
    "GAP": {"pooling": "gap"},
    "max+min": {"pooling": "maxmin", "alpha": 1.0},
    "WELDON k=3": {"pooling": "weldon", "kmax": 3, "alpha": 1.0},
    "WILDCAT M=2 k=0.05 a=0.7": {"pooling": "wildcat", "kmax": 0.05, "alpha": 0.7, "num_maps": 2},
    "LSE b=5": {"pooling": "lse", "beta_pos": 5.0, "beta_neg": -5.0, "alpha": 1.0},
}

# The model the table compares poolings on: one message-passing layer over the Morgan
# environments, rings and ring systems, as the demo was designed with (the plugin's default is
# now the hashed-environment encoder, chosen for real data).
MODEL = {
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "plugin": {"encoder": "mpnn", "hidden": 64, "layers": 1, "radius": 2, "rings": True},
}
# The ChEMBL series (1,017 molecules) needs more epochs and two message-passing layers.
CHEMBL_OPTIONS = {"pooling": "maxmin", "alpha": 1.0, "plugin": {**MODEL["plugin"], "layers": 2}}
CHEMBL_EPOCHS = 40


def run(name: str, options: dict, data: str, epochs: int, workdir: Path) -> dict:
    options = {"modality": "molecule", "data": data, "epochs": epochs, **MODEL, **options}
    return train_and_measure(options, workdir / name.replace(" ", "_").replace("=", ""))


def fingerprint_baseline(seed: int) -> float:
    plugin, config = resolve_config(
        {}, {"modality": "molecule", "data": "demo:chembl", "seed": seed}
    )
    splits = prepare_data(plugin, config, None)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)

    def features(examples):
        rows = []
        for example in examples:
            bits = generator.GetFingerprint(Chem.MolFromSmiles(example.inputs.smiles))
            array = np.zeros(2048)
            DataStructs.ConvertToNumpyArray(bits, array)
            rows.append(array)
        return np.array(rows), np.array([0 in e.labels for e in examples])

    x_train, y_train = features(splits.train + splits.val)
    x_test, y_test = features(splits.test)
    model = LogisticRegression(C=0.1, max_iter=2000).fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "molecule.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in POOLINGS.items():
            rows[name] = run(name, options, "demo:nci", args.epochs, Path(tmp))
            print(name, {k: round(v, 4) for k, v in rows[name].items()}, flush=True)
        chembl = run("chembl", CHEMBL_OPTIONS, "demo:chembl", CHEMBL_EPOCHS, Path(tmp))
    baseline = fingerprint_baseline(seed=0)
    print("chembl", chembl, "fingerprint+LR", baseline)

    def cell(row: dict, key: str) -> str:
        return f"{row[key]:.3f}" if key in row else "-"

    lines = [
        "# Molecule plugin: negative evidence on RDKit's own molecules",
        "",
        "Message-passing encoder (one layer, hidden 64; environments, rings and ring systems), "
        f"{args.epochs} epochs each, CPU (2 threads), seed 0. "
        "Command: `python -m benchmarks.molecule_demo`.",
        "",
        "## demo:nci: active = aromatic OH (fr_Ar_OH) and NOT halogen (fr_halogen)",
        "",
        "4,991 molecules of RDKit's NCI sample (8 of its 4,999 SMILES do not parse: reported and "
        "skipped), split 70/15/15. Atom AUPRC: atoms scored by the highest (positive) or lowest "
        "(negative) region score that covers them, against the atoms of the aromatic OH "
        "(positive, in molecules that have one) and of the halogens (negative).",
        "",
        "| pooling | test ROC-AUC | test mAP | positive atom AUPRC | negative atom AUPRC | "
        "train s |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {cell(row, 'roc_auc')} | {cell(row, 'mAP')} | "
            f"{cell(row, 'positive_atom_auprc')} | {cell(row, 'negative_atom_auprc')} | "
            f"{row['seconds']:.0f} |"
        )
    lines += [
        "",
        "## demo:chembl: real measured labels (CHEMBL2321810, pIC50 >= 7)",
        "",
        "| model | test ROC-AUC |",
        "|---|---|",
        f"| negev max+min, message passing (2 layers, {CHEMBL_EPOCHS} epochs) | "
        f"{chembl['roc_auc']:.3f} |",
        f"| Morgan fingerprint (r=2, 2048 bits) + logistic regression | {baseline:.3f} |",
        "",
        "One congeneric series of 1,017 molecules (353 active), split 70/15/15 (153 test). A "
        "linear model on 2048 Morgan bits is the strong classical baseline for such a series; "
        "the message-passing network, trained from scratch, stays below it.",
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
