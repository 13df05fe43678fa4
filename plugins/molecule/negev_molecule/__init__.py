"""negev modality plugin for molecules (RDKit): substructure regions, a message-passing encoder,
inhibiting groups found as negative evidence."""

from negev_molecule.plugin import MoleculePlugin

__all__ = ["MoleculePlugin"]
