"""The ``bags`` modality: multiple-instance learning on bags of instance features."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from negev.files import safe_name
from negev.inference import ItemPrediction
from negev.inference.outputs import region_map, save_region_map
from negev.plugins import DataSplits, Example, ModalityPlugin, RegionEncoder
from negev.plugins.normalize import ChannelStats
from negev.plugins.render import item_stem, write_file
from negev_bags.bags import SUFFIXES, Bag, check_bag, read_bag
from negev_bags.demo import ARTEFACT, TUMOUR, slide_demo
from negev_bags.encoders import InstanceEncoder
from negev_bags.evidence import instance_auprc, write_instance_csv, write_scatter
from negev_bags.options import BagsOptions
from negev_bags.readers import read_bag_csv, read_mil_table
from negev_bags.warm_start import MEAN_POOLINGS, bag_mean_start


class BagsPlugin(ModalityPlugin):
    """Bags of instance features (whole-slide tiles, Musk-style tables); regions = instances.

    ``--data bags.csv``: a CSV ``bag,label[,split]`` of ``.pt`` / ``.npy`` / ``.h5`` files (the
    CLAM / Trident ``features`` + ``coords`` layout), or with ``--set format=table`` one table of
    instances ``bag id, label, features...``. No ``--data`` (or ``demo``): generated slides
    labelled "tumour AND NOT artefact". Plugin options: :class:`~negev_bags.options.BagsOptions`.

    Default model: ``meanwildcat`` over the (standardised) instance features beside a one-layer
    MLP of them (``[x, MLP(x)]``): a linear bag-mean model plus WILDCAT (top / bottom 2%) of
    instance evidence read against the bag's own mean. The bag-mean model starts at the logistic
    regression on the training bags' means (:mod:`negev_bags.warm_start`) and the evidence at 0:
    the first MIL baseline is the starting model, exactly (kept by the engine as epoch 0), and
    training, from the evidence at 1% of its instance scores, adds negative evidence to it.
    """

    name = "bags"
    description = "Bags of instance features (MIL, whole slides): instances as regions"
    options_class = BagsOptions

    def __init__(self) -> None:
        self.load_state({})

    def default_config(self) -> dict[str, Any]:
        return {
            "epochs": 30,
            "batch_size": 8,
            "lr": 3e-3,
            "weight_decay": 1e-4,
            "pooling": "meanwildcat",
            "kmax": 0.02,
            "kmin": 0.02,
            "alpha": 1.0,
            "num_maps": 1,
        }

    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        options = self.options_of(config)
        seed = int(config.get("seed", 0))
        if spec is None or spec == "demo":
            sizes = (options.demo_train, options.demo_val, options.demo_test)
            instances = (options.demo_min, options.demo_max)
            return slide_demo(sizes, seed, options.demo_dim, instances)
        path = Path(spec)
        if path.suffix.lower() != ".csv" or not path.is_file():
            raise ValueError(f"--data {spec}: expected a .csv file (bag,label[,split] or a table)")
        classes = options.classes
        common = {
            "classes": classes.split("|") if classes else None,
            "negative": options.negative,
            "seed": seed,
            "max_instances": options.max_instances,
        }
        if options.format == "files":
            labelled = config.get("labelled", True)
            return read_bag_csv(path, width=options.dim or None, labelled=labelled, **common)
        return read_mil_table(
            path,
            bag_column=_column(options.bag_column),
            label_column=_column(options.label_column),
            **common,
        )

    def fit_state(self, data: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        """The feature width, the mean / std of the training instances (of the first
        ``stats_bags`` training bags) when ``standardize``, and ``warm_start``: the bag-mean
        logistic regression of the training split (:func:`~negev_bags.warm_start.bag_mean_start`)
        for a model holding a linear scorer (no ``hidden``, or ``skip``) under a pooling in
        :data:`~negev_bags.warm_start.MEAN_POOLINGS`, when the option ``warm_start`` is on."""
        options = self.options_of(config)
        bags = data.train[: options.stats_bags]
        first, _ = bags[0].inputs.load()
        state: dict[str, Any] = {"in_features": int(first.shape[1])}
        if options.standardize:
            features = (example.inputs.load()[0] for example in bags)
            state.update(ChannelStats.fit(features, channel_dim=-1).to_dict())
        linear = not options.hidden or options.skip  # the linear scorer is a special case
        if options.warm_start and linear and config.get("pooling") in MEAN_POOLINGS:
            state["warm_start"] = bag_mean_start(data, int(config.get("seed", 0)))
        return state

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.options = self.options_of(config)
        self.in_features = state.get("in_features")
        self.mean = torch.tensor(state["mean"]) if "mean" in state else None
        self.std = torch.tensor(state["std"]) if "std" in state else None
        start = state.get("warm_start")
        self.head_start = None
        if start is not None:
            self.head_start = (torch.tensor(start["weight"]), torch.tensor(start["bias"]))

    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        if self.in_features is None:
            raise ValueError("the bags plugin needs the feature width: load the data first")
        options = self.options_of(config)
        return InstanceEncoder(
            self.in_features, options.hidden, options.chunk, self.mean, self.std,
            head_start=self.head_start, skip=options.skip,
        )  # fmt: skip

    def load_item(
        self,
        example: Example,
        *,
        train: bool,
        generator: torch.Generator,
        view: dict[str, Any] | None = None,
    ) -> Example:
        """Read a file bag into memory (in a DataLoader worker); in-memory bags pass as they are."""
        del train, generator, view
        bag = example.inputs
        if bag.features is not None:
            return example
        features, coords = bag.load()
        return replace(example, inputs=Bag(features, coords, bag.path, len(features)))

    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """``{"features": (B, N, d) float32 zero-padded, "mask": (B, N) bool}``; one bag is passed
        as is (no copy: a huge bag is not duplicated)."""
        bags = [e.inputs.load()[0] for e in examples]
        for example, features in zip(examples, bags, strict=True):
            problem = check_bag(features, self.in_features, self.options.max_instances)
            if problem:
                raise ValueError(f"{example.name}: {problem}")
        if len(bags) == 1:
            features = bags[0][None]
            return {"features": features, "mask": torch.ones(features.shape[:2], dtype=bool)}
        longest = max(b.shape[0] for b in bags)
        batch = torch.zeros(len(bags), longest, bags[0].shape[1])
        mask = torch.zeros(len(bags), longest, dtype=torch.bool)
        for i, bag in enumerate(bags):
            batch[i, : len(bag)] = bag
            mask[i, : len(bag)] = True
        return {"features": batch, "mask": mask}

    def read_input(self, text: str) -> Example:
        path = Path(text)
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{text}: a bag file is {', '.join(SUFFIXES)}")
        features, coords = read_bag(path)  # fail now, naming the file
        problem = check_bag(features, self.in_features, self.options.max_instances)
        if problem:
            raise ValueError(f"{path.name}: {problem}")
        return Example(text, Bag(features, coords, path, len(features)), ())

    def region_names(self, example: Example) -> list[str]:
        features, coords = example.inputs.load()
        if coords is None:
            return [f"instance {i}" for i in range(features.shape[0])]
        return [f"instance {i} ({x:g}, {y:g})" for i, (x, y) in enumerate(coords.tolist())]

    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """A CSV of every instance's class scores (with coords and the pooling's selection), and
        per class a PNG of the instances' evidence at their coordinates."""
        _, coords = example.inputs.load()
        stem = item_stem(example.name)
        files = [
            write_file(
                out_dir,
                f"{stem}_instances.csv",
                lambda path: write_instance_csv(path, maps, classes, coords, selected),
            )
        ]
        for c, name in enumerate(classes):
            title = f"{Path(example.name).name}: {name} {float(scores[c]):+.2f}"
            files.append(
                write_file(
                    out_dir,
                    f"{stem}_{safe_name(name)}.png",
                    lambda path, c=c, title=title: write_scatter(path, maps[c], coords, title),
                )
            )
        return files

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """Per bag ``maps/<id>.npy`` (C, instances) and ``instances/<id>.csv``: each instance's
        index, coordinates (when the bag has them) and class scores."""
        folder = Path(out_dir) / "instances"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for prediction in predictions:
            written.append(save_region_map(prediction, out_dir))
            maps = torch.from_numpy(region_map(prediction))
            _, coords = prediction.example.inputs.load()
            path = folder / f"{prediction.id}.csv"
            written.append(write_instance_csv(path, maps, classes, coords))
        return written

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
    ) -> dict[str, float]:
        """On the demo (instance kinds known): AUPRC of the first class's instance scores for
        tumour tiles (positive evidence) and of their negation for artefact tiles (negative
        evidence), pooled over all instances of all bags."""
        known = [i for i, e in enumerate(examples) if "kinds" in e.truth]
        if not known:
            return {}
        kinds = [examples[i].truth["kinds"] for i in known]
        values = [maps[i][0, : len(k)] for i, k in zip(known, kinds, strict=True)]  # no padding
        return instance_auprc(values, kinds, TUMOUR, ARTEFACT)


def _column(value: str) -> int | str:
    """A table column option: an index (digits) or a header name."""
    return int(value) if value.isdigit() else value
