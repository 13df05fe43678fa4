"""The molecule plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from negev.plugins.options import option

__all__ = ["MAX_ATOMS", "MoleculeOptions"]

#: Most atoms of one molecule (plugin option ``max_atoms``): a larger one is a bad item. Drug-like
#: molecules have under 100 heavy atoms; the regions of one take time quadratic in its atoms
#: (RDKit writes each region's SMILES from the whole molecule): ~4 s at 1,000 atoms.
MAX_ATOMS = 1000


@dataclass(frozen=True)
class MoleculeOptions:
    """Options of the ``molecule`` plugin."""

    encoder: Literal["hashed", "mpnn"] = option(
        "hashed", "hashed: Morgan environments hashed into embeddings; mpnn: message passing"
    )
    buckets: int = option(2048, "hashed: embedding rows", applies={"encoder": ("hashed",)})
    warm_start: bool = option(
        True,
        "hashed: fit the linear term (a logistic regression on the Morgan count fingerprint, C "
        "on validation) before training and keep it as epoch 0",
        applies={"encoder": ("hashed",)},
        otherwise=False,  # message passing is not warm-started
    )
    hidden: int = option(32, "feature width")
    layers: int = option(1, "mpnn: message-passing layers", applies={"encoder": ("mpnn",)})
    radius: int = option(2, "radius of the Morgan environments (regions)")
    rings: bool = option(False, "add rings and ring systems as regions")
    brics: bool = option(False, "add BRICS fragments as regions")
    smiles_column: str = option("smiles", "CSV: the SMILES column")
    label_columns: tuple[str, ...] = option((), "the 0/1 task columns (default: all the others)")
    split_column: str = option("split", "the train / val / test column or property")
    demo_size: int | None = option(None, "demo: its first molecules only (default: all)")
    max_atoms: int = option(MAX_ATOMS, "most atoms of a molecule; a larger one is a bad item")

    def __post_init__(self) -> None:
        if self.max_atoms < 1:
            raise ValueError(f"plugin option max_atoms must be >= 1, got {self.max_atoms}")
