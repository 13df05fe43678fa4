"""The ``molecule`` modality: regions are RDKit substructures, evidence maps go onto atoms."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rdkit import Chem
from sklearn.metrics import average_precision_score
from torch import Tensor

from negev.files import safe_name
from negev.inference import ItemPrediction
from negev.inference.outputs import save_region_map
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.render import evidence_rgb, item_stem, write_file
from negev_molecule import data
from negev_molecule.chem import parse_smiles
from negev_molecule.encoders import HashedEnvironmentEncoder, MessagePassingEncoder
from negev_molecule.faithfulness import atom_faithfulness
from negev_molecule.graph import MolGraph, collate_graphs
from negev_molecule.options import MoleculeOptions


class MoleculePlugin(ModalityPlugin):
    """Molecules from SMILES (CSV) or SDF; demos ``demo:nci`` (default, rule-based, with
    ground-truth evidence atoms) and ``demo:chembl`` (measured pIC50).

    Plugin options: :class:`~negev_molecule.options.MoleculeOptions` (``negev plugins
    --options molecule``).
    """

    name = "molecule"
    description = "Molecules (RDKit): substructure regions, inhibiting groups as negative evidence"
    search_encoders = ("hashed", "mpnn")  # what `negev tune` tries
    options_class = MoleculeOptions
    classes_are_columns = True  # each task a 0/1 column

    def default_config(self) -> dict[str, Any]:
        # Regions are the Morgan environments (radius 2) and the encoder embeds their bit, so
        # the SUM of the region scores is a linear model on the Morgan count fingerprint (a count
        # fingerprint is a sum over environments; dividing by the region count cost validation
        # ROC-AUC on ChEMBL2321810 and Huuskonen solubility). sumwildcat = that sum + a bias +
        # a learned gate (0 at first) times WILDCAT (top and bottom quarter of the regions, the
        # strongest environments for and against). The engine fits the linear term convexly
        # first (logistic regression, C on validation: option warm_start) and keeps it as
        # epoch 0; training then refines it at a small lr (the sum does not divide gradients by
        # the region count) and stops after 5 epochs without a better validation ROC-AUC.
        return {
            "epochs": 20,
            "patience": 5,
            "batch_size": 32,
            "lr": 3e-3,
            "weight_decay": 1e-2,
            "pooling": "sumwildcat",
            "kmax": 0.25,
            "kmin": 0.25,
            "alpha": 1.0,
            "monitor": "roc_auc",
        }  # fmt: skip

    def warm_start(self, config: dict[str, Any]) -> bool:
        """The hashed encoder's linear path is fitted before training (option ``warm_start``)."""
        options = self.options_of(config)
        return options.warm_start and options.encoder == "hashed"

    def __init__(self) -> None:
        self.options = MoleculeOptions()  # the run's, set by load_state: regions of --input items

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        return data.load(spec, config)

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.options = self.options_of(config)

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        options = self.options_of(config)
        if options.encoder == "hashed":
            return HashedEnvironmentEncoder(options.buckets, options.hidden)
        return MessagePassingEncoder(options.hidden, options.layers)

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        return collate_graphs([e.inputs for e in examples])

    def read_input(self, text: str) -> Example:
        try:
            graph = data.Featurizer.of(self.options)(parse_smiles(text))
        except ValueError as exc:
            raise ValueError(f"--input {text!r}: {exc}") from None
        return Example(text, graph, ())

    def region_names(self, example: Example) -> list[str]:
        return [f"{r.kind}:{r.smiles}" for r in example.inputs.regions]

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """Per class, the molecule with atoms coloured by evidence (green for, red against),
        as PNG and SVG."""
        # RDKit's drawing module needs the X rendering library (libXrender), absent on headless
        # machines: only rendering imports it, so training and evaluation work there
        from rdkit.Chem.Draw import rdMolDraw2D

        graph: MolGraph = example.inputs
        mol = Chem.MolFromSmiles(graph.smiles)
        stem = item_stem(example.name)
        written = []
        for c, name in enumerate(classes):
            high, low = data.atom_evidence(graph, maps[c, : len(graph.regions)].numpy())
            weight = np.where(np.abs(low) > np.abs(high), low, high)
            scale = float(np.abs(weight).max()) or 1.0
            colours = {
                i: evidence_rgb(float(w) / scale)
                for i, w in enumerate(weight)
                if abs(w) > 0.05 * scale
            }
            # RDKit takes UTF-8: a class name that is not valid Unicode (a lone surrogate from
            # a file name) is drawn with its bad characters replaced, not an error
            legend = f"{name}: {float(scores[c]):+.2f}".encode(errors="replace").decode()
            for drawer, suffix in (
                (rdMolDraw2D.MolDraw2DCairo(500, 400), "png"),
                (rdMolDraw2D.MolDraw2DSVG(500, 400), "svg"),
            ):
                drawer.DrawMolecule(
                    mol,
                    highlightAtoms=list(colours),
                    highlightAtomColors=colours,
                    highlightBonds=[],
                    legend=legend,
                )
                drawer.FinishDrawing()
                content = drawer.GetDrawingText()
                content = content if isinstance(content, bytes) else content.encode()
                file = f"{stem}_{safe_name(name)}.{suffix}"
                written.append(write_file(out_dir, file, lambda p, c=content: p.write_bytes(c)))
        return written

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """``maps/<id>.npy`` (C, regions) per molecule, and ``atoms.jsonl``, one line per
        molecule: ``{"id", "item", "smiles", "atoms": [element, ...], "scores": {class:
        {"for": [...], "against": [...]}}}``, each atom's strongest evidence for (the max over
        the regions that hold it) and against (the min), null for an atom in no region
        (:func:`negev_molecule.data.atom_evidence`). The graph's featurisation (RDKit) stays in
        Python: an exported model takes the collated tensors."""
        path = Path(out_dir) / "atoms.jsonl"
        written = []

        def listed(values: np.ndarray) -> list[float | None]:
            return [round(float(v), 6) if np.isfinite(v) else None for v in values]

        with open(path, "w") as file:
            for prediction in predictions:
                written.append(save_region_map(prediction, out_dir))
                graph: MolGraph = prediction.example.inputs
                regions = len(graph.regions)
                scores = {}
                for name, maps in zip(classes, prediction.maps, strict=True):
                    high, low = data.atom_evidence(graph, maps[:regions].numpy())
                    scores[name] = {"for": listed(high), "against": listed(low)}
                mol = Chem.MolFromSmiles(graph.smiles)
                line = {
                    "id": prediction.id,
                    "item": prediction.example.name,
                    "smiles": graph.smiles,
                    "atoms": [atom.GetSymbol() for atom in mol.GetAtoms()],
                    "scores": scores,
                }
                file.write(json.dumps(line) + "\n")
        return [path, *written]

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
        model: torch.nn.Module | None = None,
    ) -> dict[str, float]:
        """Atom-level AUPRC of the positive evidence (atoms of group A, in molecules that hold it)
        and of the negative evidence (atoms of group B), class 0; given a ``model`` whose
        encoder reads atom features (``mpnn``), the faithfulness of class 0's atom evidence on
        every molecule (:meth:`faithfulness`)."""
        pos_truth, pos_score, neg_truth, neg_score = [], [], [], []
        for example, item in zip(examples, maps, strict=True):
            truth = example.truth
            if "positive_atoms" not in truth:
                continue
            graph: MolGraph = example.inputs
            high, low = data.atom_evidence(graph, item[0, : len(graph.regions)].numpy())
            atoms = range(graph.atoms.shape[0])
            if truth["positive_atoms"]:
                pos_truth += [a in truth["positive_atoms"] for a in atoms]
                pos_score += list(high)
            if truth["negative_atoms"]:
                neg_truth += [a in truth["negative_atoms"] for a in atoms]
                neg_score += list(-low)
        metrics = {}
        if pos_truth:
            metrics["positive_atom_auprc"] = float(average_precision_score(pos_truth, pos_score))
        if neg_truth:
            metrics["negative_atom_auprc"] = float(average_precision_score(neg_truth, neg_score))
        if model is not None and examples and self._reads_atoms(model):
            metrics.update(self.faithfulness(model, examples, maps))
        return metrics

    @staticmethod
    def _reads_atoms(model: torch.nn.Module) -> bool:
        """Whether masking atom features can change the model's scores (the message-passing
        encoder reads them; the hashed environment encoder reads region identifiers only)."""
        return isinstance(getattr(model, "encoder", None), MessagePassingEncoder)

    def faithfulness(
        self, model: torch.nn.Module, examples: list[Example], maps: list[Tensor], c: int = 0
    ) -> dict[str, float]:
        """``atom_comprehensiveness`` and ``atom_sufficiency``
        (:func:`negev_molecule.faithfulness.atom_faithfulness`) of class ``c``'s atom evidence
        for the model's decision on each molecule: present (probability sigmoid(score), atoms
        ranked by their highest region score) or absent (sigmoid(-score), atoms ranked by their
        lowest region score, most negative first)."""
        from negev.engine import predict

        device = next(model.parameters()).device
        graphs: list[MolGraph] = [e.inputs for e in examples]

        def scores_of(items: list[MolGraph]) -> Tensor:
            batch = [Example(f"item {i}", g, ()) for i, g in enumerate(items)]
            return predict(model, self, batch, 64, device)[0][:, c]

        sign = torch.where(scores_of(graphs) > 0, 1.0, -1.0)
        evidence = []
        for graph, item, s in zip(graphs, maps, sign.tolist(), strict=True):
            high, low = data.atom_evidence(graph, item[c, : len(graph.regions)].numpy())
            evidence.append(high if s > 0 else -low)

        def probability(items: list[MolGraph], owners: list[int]) -> np.ndarray:
            return torch.sigmoid(scores_of(items) * sign[owners]).numpy()

        return atom_faithfulness(probability, graphs, evidence)
