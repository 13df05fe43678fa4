"""The bags plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from negev.plugins.options import option
from negev_bags.bags import MAX_INSTANCES

__all__ = ["BagsOptions"]


@dataclass(frozen=True)
class BagsOptions:
    """Options of the ``bags`` plugin."""

    format: Literal["files", "table"] = option(
        "files", "files (a CSV bag,label[,split] of bag files) or table (a row per instance)"
    )
    hidden: tuple[int, ...] = option(
        (64,), "instance MLP sizes, e.g. 256,128; '' (none): a linear scorer on the features"
    )
    skip: bool = option(
        True,
        "with hidden layers, keep the (standardised) features beside the MLP's output: regions "
        "[x, MLP(x)], the linear scorer (and the warm start) a special case",
    )
    standardize: bool = option(True, "scale features by the training instances' mean / std")
    warm_start: bool = option(
        True,
        "linear scorer under gap / meanwildcat: start from the bag-mean logistic regression "
        "(C by inner 5-fold CV of the training bags)",
    )
    chunk: int = option(16384, "instances per chunk on huge bags")
    bag_column: str = option(
        "0", "table: the bag id column (index or name)", applies={"format": ("table",)}
    )
    label_column: str = option(
        "1", "table: the label column (index or name)", applies={"format": ("table",)}
    )
    negative: str | None = option(None, "the label meaning 'no class' (0 when labels are 0 / 1)")
    classes: str | None = option(None, "fixed class list, |-separated")
    dim: int | None = option(
        None,
        "files: expected feature width (default: the first good bag's)",
        applies={"format": ("files",)},
    )
    max_instances: int = option(MAX_INSTANCES, "most instances of a bag; a larger one is bad")
    stats_bags: int = option(200, "training bags read for the feature statistics")
    demo_train: int = option(200, "demo: training slides")
    demo_val: int = option(60, "demo: validation slides")
    demo_test: int = option(120, "demo: test slides")
    demo_dim: int = option(32, "demo: feature width")
    demo_min: int = option(500, "demo: fewest instances of a slide")
    demo_max: int = option(20_000, "demo: most instances of a slide")

    def __post_init__(self) -> None:
        if self.max_instances < 1:
            raise ValueError(f"plugin option max_instances must be >= 1, got {self.max_instances}")
