"""Faithfulness of atom evidence: ERASER's comprehensiveness and sufficiency (DeYoung et al.,
ACL 2020) with atoms for tokens.

With p(y | m) the model's probability of its own decision y on molecule m, and r_k the top
``floor(k * n)`` of its n atoms by the evidence for y, removal is masking: the atoms' feature
rows are set to zero (the graph, its bonds and regions are kept, so the message-passing encoder
sees the structure but not what the atoms are; the ``hashed`` environment encoder does not read
atom features, so masking leaves its scores unchanged and both metrics 0):

    comprehensiveness = mean_k [p(y | m) - p(y | m with r_k masked)]
    sufficiency       = mean_k [p(y | m) - p(y | m with all but r_k masked)]

over k in {1, 5, 10, 20, 50} % (ERASER's AOPC bins).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from negev_molecule.graph import MolGraph

__all__ = ["AOPC_FRACTIONS", "atom_faithfulness", "mask_atoms"]

AOPC_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


def mask_atoms(graph: MolGraph, atoms: Sequence[int]) -> MolGraph:
    """A copy of ``graph`` whose ``atoms`` feature rows are zero."""
    features = graph.atoms.clone()
    features[list(atoms)] = 0
    return dataclasses.replace(graph, atoms=features)


def atom_faithfulness(
    probability: Callable[[list[MolGraph], list[int]], np.ndarray],
    graphs: Sequence[MolGraph],
    evidence: Sequence[np.ndarray],
    fractions: Sequence[float] = AOPC_FRACTIONS,
) -> dict[str, float]:
    """Comprehensiveness and sufficiency of per-atom evidence.

    Args:
        probability: ``(graphs, index of the molecule each comes from)`` -> the model's
            probability of its decision on that molecule, per graph (len,) float.
        graphs: the molecules. evidence: per molecule, (n_atoms,) evidence for the decision
            (higher = more for it).

    Returns:
        ``{"atom_comprehensiveness", "atom_sufficiency"}``, means over molecules and fractions.
    """
    full = np.asarray(probability(list(graphs), list(range(len(graphs)))))
    removed, kept, owners = [], [], []
    for i, (graph, values) in enumerate(zip(graphs, evidence, strict=True)):
        n = graph.atoms.shape[0]
        order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
        for fraction in fractions:
            top = order[: math.floor(fraction * n)].tolist()
            removed.append(mask_atoms(graph, top))
            kept.append(mask_atoms(graph, sorted(set(range(n)) - set(top))))
            owners.append(i)
    shape = (len(graphs), len(fractions))
    without = np.asarray(probability(removed, owners)).reshape(shape)
    alone = np.asarray(probability(kept, owners)).reshape(shape)
    return {
        "atom_comprehensiveness": float((full[:, None] - without).mean()),
        "atom_sufficiency": float((full[:, None] - alone).mean()),
    }
