"""The molecule plugin: parsing, regions, readers, the demos' rule, encoders, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Fragments
from typer.testing import CliRunner

from negev.plugins import get_plugin
from negev_cli.app import app
from negev_molecule import data
from negev_molecule.chem import parse_smiles, regions
from negev_molecule.encoders import FingerprintEncoder, MessagePassingEncoder
from negev_molecule.graph import MolGraph, collate_graphs


def test_parse_errors_give_the_reason():
    with pytest.raises(ValueError, match="empty SMILES"):
        parse_smiles("  ")
    with pytest.raises(ValueError, match="does not parse"):
        parse_smiles("c1ccc")
    with pytest.raises(ValueError, match="cannot be sanitized: Explicit valence"):
        parse_smiles("C(C)(C)(C)(C)C")


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
    examples, bad = data.nci_demo(radius=0)
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
    assert torch.allclose(batch["membership"].sum(2)[batch["region_mask"]], torch.tensor(1.0))
    for encoder in (MessagePassingEncoder(16, 2), FingerprintEncoder(16)):
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
         "--set", "encoder=fingerprint", "--set", "radius=1", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(out)])
    assert result.exit_code == 0, result.output
    assert "roc_auc" in json.loads((out / "evaluation_test.json").read_text())
    result = runner.invoke(
        app, ["explain", "--checkpoint", str(out), "-i", "Oc1ccc(Cl)cc1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "env0:Cl" in result.output or "env1:" in result.output
    png = next(tmp_path.glob("*_active.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in next(tmp_path.glob("*_active.svg")).read_text()
    result = runner.invoke(app, ["explain", "--checkpoint", str(out), "-i", "C1CC"])
    assert result.exit_code == 1 and "does not parse" in result.output


def test_plugin_is_registered():
    plugin = get_plugin("molecule")
    assert "RDKit" in plugin.description
