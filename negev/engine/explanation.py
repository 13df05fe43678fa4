"""Explaining a trained run's decisions on given items: the API behind ``negev explain``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from negev.engine.data import to_device
from negev.engine.precision import autocast
from negev.engine.trainer import load_model
from negev.plugins import Example

__all__ = ["Explanation", "explain"]


@dataclass
class Explanation:
    """One item's evidence.

    Attributes:
        example: the item as the plugin read it. classes: the class names.
        scores: (C,) class scores. maps: (C, *regions) class maps (> 0 for, < 0 against).
        selected: (high, low) (C, *regions) bool masks of the regions the pooling kept, or None
            (a pooling without a hard selection).
        region_names: the plugin's names of the regions in flattened order (None for padding),
            or None. files: what the plugin rendered.
    """

    example: Example
    classes: list[str]
    scores: Tensor
    maps: Tensor
    selected: tuple[Tensor, Tensor] | None
    region_names: list[str | None] | None
    files: list[Path]

    def top_regions(
        self, c: int, k: int
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The ``k`` strongest distinct regions for and against class ``c``: (name, map value)
        pairs, strongest first. A name met at several positions (a word said twice, a
        substructure found at two atoms) is listed once, with its strongest value."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        flat = self.maps[c].reshape(-1)
        names = self.region_names
        regions = [i for i, n in enumerate(names) if n is not None] if names else None
        values = flat[regions] if regions is not None else flat
        listed = values.tolist()

        def named(order: list[int]) -> list[tuple[str, float]]:
            found: dict[str, float] = {}
            for r in order:
                if len(found) == k:
                    break
                found.setdefault(str(names[regions[r]]) if regions else str(r), listed[r])
            return list(found.items())

        return (
            named(values.argsort(descending=True, stable=True).tolist()),
            named(values.argsort(stable=True).tolist()),
        )


@torch.no_grad()
def explain(
    run: str | Path,
    inputs: list[str],
    out_dir: str | Path | None = None,
    *,
    which: str = "best",
    device: str = "cpu",
    render: bool = True,
    overwrite: bool = False,
) -> list[Explanation]:
    """Class scores, maps and kept regions of each item of ``inputs`` (paths or literals, read
    by the plugin's ``read_input``) under a run's ``best`` (or ``latest``) checkpoint, rendered
    by the plugin into ``out_dir`` (default ``<run>/explanations``) when ``render``.

    Raises:
        FileExistsError: ``out_dir`` already holds files and not ``overwrite`` (which lets the
            files of the same names be replaced; nothing else there is touched).
    """
    out = Path(out_dir) if out_dir is not None else Path(run) / "explanations"
    if render and not overwrite and out.is_dir() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} already holds files: pass --overwrite (overwrite=True) to replace those of "
            "the same names, or choose another --out (out_dir)"
        )
    plugin, config, model, meta = load_model(run, device, which)
    classes = meta["classes"]
    target = torch.device(device)
    explanations = []
    for text in inputs:
        example = plugin.read_input(text)
        loaded = plugin.load_item(example, train=False, generator=torch.Generator())
        batch = to_device(plugin.collate([loaded]), target)
        # encoder and head apart: the mask also gives the kept regions
        with autocast(target, config.precision):
            features, mask = model.encoder(batch)
        features = features.float()
        result = model.head(features, mask)
        scores, maps = result.scores[0].cpu(), result.maps[0].cpu()
        selected = _selection(model, features, mask)
        files = (
            plugin.render_evidence(example, maps, scores, classes, out, selected=selected)
            if render
            else []
        )
        explanations.append(
            Explanation(
                example, classes, scores, maps, selected, plugin.region_names(example), files
            )
        )
    return explanations


def _selection(model, features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """The (high, low) regions the model's pooling keeps for the one item of ``features``
    (1, D, *regions), as (C, *regions) bool masks on the CPU; None for a pooling without a hard
    selection."""
    selected = model.head.selection(features, mask)
    if selected is None:
        return None
    high, low = selected
    return high[0].cpu(), low[0].cpu()
