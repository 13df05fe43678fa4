"""The molecule plugin: parsing, regions, readers, the demos' rule, encoders, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Fragments, rdFingerprintGenerator
from typer.testing import CliRunner

from negev.nn import EvidenceHead, create_pool
from negev.plugins import get_plugin
from negev_cli.app import app
from negev_molecule import data
from negev_molecule.chem import parse_smiles, regions
from negev_molecule.encoders import HashedEnvironmentEncoder, MessagePassingEncoder
from negev_molecule.graph import MolGraph, collate_graphs


def test_parse_errors_give_the_reason():
    with pytest.raises(ValueError, match="empty SMILES"):
        parse_smiles("  ")
    with pytest.raises(ValueError, match="does not parse"):
        parse_smiles("c1ccc")
    with pytest.raises(ValueError, match="cannot be sanitized: Explicit valence"):
        parse_smiles("C(C)(C)(C)(C)C")


def test_a_molecule_is_the_same_however_its_hydrogens_are_written():
    """Explicit [H] atoms are removed, as RDKit's default parse does: same atoms, same regions."""
    for explicit, implicit in [("[H]Oc1ccccc1", "Oc1ccccc1"), ("[H]OC([H])([H])[H]", "CO"),
                               ("[H]n1cccc1", "c1cc[nH]c1")]:  # fmt: skip
        a, b = parse_smiles(explicit), parse_smiles(implicit)
        assert Chem.MolToSmiles(a) == Chem.MolToSmiles(b)
        assert sorted(r.identifier for r in regions(a)) == sorted(r.identifier for r in regions(b))
    assert Chem.MolToSmiles(parse_smiles("[2H]OC")) == "[2H]OC"  # an isotope is an atom


def test_a_smiles_with_a_space_is_refused_not_cut():
    with pytest.raises(ValueError, match=r"holds a space: RDKit would read 'Cl' as a name"):
        parse_smiles("Oc1ccccc1 Cl")


def test_regions_match_neighbourhoods_and_rings():
    mol = parse_smiles("Oc1ccc2ccccc2c1")
    found = regions(mol, radius=1)
    by_kind = {}
    for region in found:
        by_kind.setdefault(region.kind, set()).add(region.atoms)
    assert by_kind["env0"] == {(i,) for i in range(mol.GetNumAtoms())}
    expected_env1 = {
        tuple(sorted({a.GetIdx(), *(n.GetIdx() for n in a.GetNeighbors())})) for a in mol.GetAtoms()
    }
    assert by_kind["env1"] == expected_env1
    assert by_kind["ring"] == {tuple(sorted(r)) for r in mol.GetRingInfo().AtomRings()}
    assert by_kind["ringsystem"] == {tuple(range(1, 11))}


def test_nci_demo_reports_its_bad_smiles_and_follows_the_rule():
    examples, bad = data.nci_demo(data.Featurizer(radius=0))
    assert len(bad) == 8 and len(examples) == 4999 - 8
    assert all(item.name.startswith("first_5K.smi:") and item.reason for item in bad)
    for example in examples[::25]:
        mol = Chem.MolFromSmiles(example.inputs.smiles)
        active = Fragments.fr_Ar_OH(mol) > 0 and Fragments.fr_halogen(mol) == 0
        assert (example.labels == (0,)) == active, example.name


def test_csv_reader_reports_bad_rows_and_missing_labels(tmp_path):
    path = tmp_path / "assay.csv"
    path.write_text("smiles,toxic,soluble\nCCO,0,1\nc1ccccc1O,1,\nC1CC,1,0\nCCN,2,0\nCCCl,,1\n")
    config = {"seed": 0, "plugin": {"radius": 1}}
    splits = data.load(str(path), config)
    assert splits.classes == ["toxic", "soluble"]
    reasons = {item.name: item.reason for item in splits.bad}
    assert "does not parse" in reasons["assay.csv:4"]
    assert "label '2' in column 'toxic'" in reasons["assay.csv:5"]
    every = {e.name: e for e in splits.train + splits.val + splits.test}
    assert every["assay.csv:3"].labels == (0,) and every["assay.csv:3"].unknown == (1,)
    assert every["assay.csv:6"].unknown == (0,)


def test_sdf_reader(tmp_path):
    path = tmp_path / "set.sdf"
    writer = Chem.SDWriter(str(path))
    for smiles, active in (("CCO", 1), ("c1ccccc1", 0), ("CC(=O)O", 1)):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("active", str(active))
        writer.write(mol)
    writer.close()
    broken = Chem.MolToMolBlock(Chem.MolFromSmiles("CC")).replace("  1  2  1  0", "  1  9  1  0")
    path.write_text(path.read_text() + broken + "$$$$\n")
    splits = data.load(str(path), {"seed": 0, "plugin": {}})
    assert splits.classes == ["active"]
    assert len(splits.train + splits.val + splits.test) == 3
    assert [b.name for b in splits.bad] == ["set.sdf:record 4"]


def test_collate_and_encoders_mask_padding():
    graphs = [MolGraph.from_mol(parse_smiles(s)) for s in ("CCO", "Oc1ccc(Cl)cc1")]
    batch = collate_graphs(graphs)
    assert batch["region_mask"].sum(1).tolist() == [len(g.regions) for g in graphs]
    slots, weights = batch["members"][0], batch["member_weights"]
    per_region = torch.zeros(batch["region_mask"].numel()).index_add_(0, slots, weights)
    assert torch.allclose(per_region[batch["region_mask"].flatten()], torch.tensor(1.0))
    for encoder in (MessagePassingEncoder(16, 2), HashedEnvironmentEncoder(512, 16)):
        features, mask = encoder(batch)
        assert features.shape == (2, 16, batch["region_mask"].shape[1])
        alone, _ = encoder(collate_graphs(graphs[:1]))
        # the small molecule's regions do not depend on what else is in the batch
        n = len(graphs[0].regions)
        torch.testing.assert_close(features[0, :, :n], alone[0, :, :n], atol=1e-5, rtol=1e-5)


def test_cli_train_evaluate_explain(tmp_path):
    rng = np.random.default_rng(0)
    smiles = ["CCO", "CCCl", "Oc1ccccc1", "Oc1ccc(Cl)cc1", "CC(=O)O", "c1ccccc1N", "OCCO", "ClCCl"]
    rows = ["smiles,active"]
    for i in range(120):
        s = smiles[i % len(smiles)]
        rows.append(f"{s},{int('O' in s and 'Cl' not in s) if rng.random() > 0.05 else ''}")
    path = tmp_path / "mols.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "-m", "molecule", "--data", str(path), "--out", str(out), "--epochs", "2",
         "--set", "radius=1", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(out)])
    assert result.exit_code == 0, result.output
    assert "roc_auc" in json.loads((out / "evaluation_test.json").read_text())
    drawn = tmp_path / "drawn"
    result = runner.invoke(
        app, ["explain", "--checkpoint", str(out), "-i", "Oc1ccc(Cl)cc1", "--out", str(drawn)]
    )
    assert result.exit_code == 0, result.output
    assert "env0:Cl" in result.output or "env1:" in result.output
    png = next(drawn.glob("*_active.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in next(drawn.glob("*_active.svg")).read_text()
    result = runner.invoke(app, ["explain", "--checkpoint", str(out), "-i", "C1CC"])
    assert result.exit_code == 1 and "does not parse" in result.output


def test_plugin_is_registered():
    plugin = get_plugin("molecule")
    assert "RDKit" in plugin.description


SMILES = ["CCO", "Oc1ccc(Cl)cc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "c1ccc2ccccc2c1", "ClCCl",
          "CC(C)(C)c1ccc(O)cc1", "O=C(O)CCC(=O)O", "C1CCNCC1", "FC(F)(F)c1ccccc1Br"]  # fmt: skip


def test_environment_regions_are_the_morgan_count_fingerprint():
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    for smiles in SMILES:
        mol = parse_smiles(smiles)
        counts = np.zeros(1024)
        for region in regions(mol, radius=2, rings=False):
            counts[region.identifier % 1024] += 1
        np.testing.assert_array_equal(counts, generator.GetCountFingerprintAsNumPy(mol))


def test_average_of_hashed_environments_is_a_linear_model_on_counts():
    """GAP over the hashed-environment regions with a linear head equals, computed apart with
    NumPy, w . (counts / total count) + b on RDKit's Morgan count fingerprint."""
    torch.manual_seed(0)
    buckets = 256  # collisions included: the model is linear in the folded counts
    encoder = HashedEnvironmentEncoder(buckets, 8)
    assert not encoder.bits.weight.any()  # starts as the constant model; trained weights:
    torch.nn.init.normal_(encoder.bits.weight)
    head = EvidenceHead(8, 2, pool=create_pool("gap"))
    featurize = data.Featurizer(radius=2, rings=False)
    mols = [parse_smiles(s) for s in SMILES]
    with torch.no_grad():
        scores = head(*encoder(collate_graphs([featurize(m) for m in mols]))).scores.numpy()
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=buckets)
    counts = np.array([generator.GetCountFingerprintAsNumPy(m) for m in mols], dtype=np.float64)
    weights = (
        encoder.bits.weight.detach().double().numpy() @ head.proj.weight.detach().double().numpy().T
    )
    expected = counts @ weights / counts.sum(1, keepdims=True) + head.proj.bias.detach().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_csv_with_a_non_label_column_names_it(tmp_path):
    path = tmp_path / "assay.csv"
    path.write_text("smiles,compound,pIC50,active\nCCO,A-1,6.2,1\nCCN,A-2,7.9,0\n")
    with pytest.raises(ValueError, match=r"column 'compound' is not a 0/1 label column.*A-1.*"
                       r"label_columns"):  # fmt: skip
        data.load(str(path), {"plugin": {}})
    path.write_text("smiles,active,pIC50\nCCO,1,6.2\nCCN,0,7.9\n")
    with pytest.raises(ValueError, match=r"'pIC50'.*assay.csv:2.*label_columns=active"):
        data.load(str(path), {"plugin": {}})
    splits = data.load(str(path), {"plugin": {"label_columns": "active"}})
    assert splits.classes == ["active"] and not splits.bad


def test_all_bad_rows_come_back_as_bad_items(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("smiles,active\nC1CC,1\nXyz,0\nCCO,7\n")
    splits = data.load(str(path), {"plugin": {}})
    assert not splits.train + splits.val + splits.test
    reasons = {item.name: item.reason for item in splits.bad}
    assert "does not parse" in reasons["bad.csv:2"] and "does not parse" in reasons["bad.csv:3"]
    assert "label '7'" in reasons["bad.csv:4"]


def test_split_column_fixes_the_splits(tmp_path):
    path = tmp_path / "split.csv"
    rows = ["smiles,active,split"]
    rows += [
        f"{s},{i % 2},{('train', 'train', 'val', 'test')[i % 4]}" for i, s in enumerate(SMILES)
    ]
    rows += ["CCCC,1,holdout", "CCCCC,0,all"]  # "all" once crashed the grouping (KeyError)
    path.write_text("\n".join(rows) + "\n")
    for seed in (0, 1):
        splits = data.load(str(path), {"seed": seed, "plugin": {}})
        assert splits.classes == ["active"]
        names = {k: [e.name for e in getattr(splits, k)] for k in ("train", "val", "test")}
        assert names["val"] == ["split.csv:4", "split.csv:8"]
        assert names["test"] == ["split.csv:5", "split.csv:9"]
        assert len(names["train"]) == 6
    assert "split 'holdout'" in splits.bad[0].reason and splits.bad[0].name == "split.csv:12"
    assert "split 'all'" in splits.bad[1].reason and splits.bad[1].name == "split.csv:13"


def test_the_plugin_loads_without_rdkit_drawing():
    """RDKit's drawing module needs libXrender, absent on headless machines: only rendering
    imports it (checked in a fresh interpreter where importing it fails)."""
    code = """
import sys
sys.modules["rdkit.Chem.Draw"] = None  # as on a machine without libXrender.so.1
from negev.plugins import get_plugin
plugin = get_plugin("molecule")
print(type(plugin).__name__)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MoleculePlugin"


def test_a_named_split_column_that_is_not_there_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("smiles,active\nCCO,1\nCCC,0\n")
    with pytest.raises(ValueError, match=r"m.csv: no split column 'fold' \(columns: smiles, act"):
        data.load(str(path), {"seed": 0, "plugin": {"split_column": "fold"}})
    assert len(data.load(str(path), {"seed": 0, "plugin": {}}).bad) == 0  # the default: optional


def test_labels_are_read_as_numbers_and_words_in_any_case(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "ID,Name,smiles,active\n1,a,CCO,TRUE\n2,b,CCC,0.00\n3,c,CCN,1.00\n4,d,CCCl,yes\n5,e,CO,-1\n"
    )
    splits = data.load(str(path), {"seed": 0, "plugin": {}})
    assert splits.classes == ["active"]  # ID and Name are not tasks, in any case
    labels = {e.name: e.labels for e in splits.train + splits.val + splits.test}
    assert labels == {"m.csv:2 (1)": (0,), "m.csv:3 (2)": (), "m.csv:4 (3)": (0,)}  # ID shown
    assert [b.name for b in splits.bad] == ["m.csv:5 (4)", "m.csv:6 (5)"]
    assert [b.reason for b in splits.bad] == [
        f"label {v!r} in column 'active' is not 0, 1, true, false or empty" for v in ("yes", "-1")
    ]


@pytest.mark.parametrize(
    "smiles", ["OCC", "c1cc(O)ccc1CC(=O)N", "Clc1ccccc1.OCCN", "N[C@@H](C)C(=O)O"]
)
def test_the_graphs_atoms_are_those_its_smiles_draws(smiles):
    """Drawings and atoms.jsonl parse the graph's canonical SMILES again: its atom i must be the
    graph's atom i, whatever order the input wrote the atoms in."""
    mol = parse_smiles(smiles)
    graph = data.Featurizer()(mol)
    drawn = Chem.MolFromSmiles(graph.smiles)
    assert [a.GetSymbol() for a in drawn.GetAtoms()] == [a.GetSymbol() for a in mol.GetAtoms()]

    def bonds(m):
        return sorted(tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in m.GetBonds())

    assert bonds(drawn) == bonds(mol)
