"""The molecule plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from negev.plugins.options import option

__all__ = ["MoleculeOptions"]


@dataclass(frozen=True)
class MoleculeOptions:
    """Options of the ``molecule`` plugin."""

    encoder: Literal["hashed", "mpnn"] = option(
        "hashed", "hashed: Morgan environments hashed into embeddings; mpnn: message passing"
    )
    buckets: int = option(2048, "hashed: embedding rows")
    hidden: int = option(32, "feature width")
    layers: int = option(1, "mpnn: message-passing layers")
    radius: int = option(2, "radius of the Morgan environments (regions)")
    rings: bool = option(False, "add rings and ring systems as regions")
    brics: bool = option(False, "add BRICS fragments as regions")
    smiles_column: str = option("smiles", "CSV: the SMILES column")
    label_columns: tuple[str, ...] = option((), "the 0/1 task columns (default: all the others)")
    split_column: str = option("split", "the train / val / test column or property")
    demo_size: int | None = option(None, "demo: its first molecules only (default: all)")
