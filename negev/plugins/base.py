"""The modality plugin contract.

A modality plugin (images, text, molecules, audio, ...) tells the engine, in one object, how to
read its data, how to prepare one item (:meth:`ModalityPlugin.load_item`, run in DataLoader
worker processes: read, decode, resize, augment), how to batch items
(:meth:`ModalityPlugin.collate`), how to turn a batch into region features, and how to show the
evidence of one item to a person. The engine adds an :class:`~negev.nn.EvidenceHead` with the
chosen pooling on top and does the rest (training, checkpoints, evaluation, explanation).

Plugins are found through the entry-point group ``negev.modalities``; each entry point names a
:class:`ModalityPlugin` subclass (or an instance), see :mod:`negev.plugins.registry`.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from negev.plugins.options import parse_options

if TYPE_CHECKING:
    from negev.inference import ItemPrediction

__all__ = ["BadItem", "DataSplits", "Example", "ModalityPlugin", "RegionEncoder"]


@dataclass
class Example:
    """One input with its weak labels.

    Attributes:
        name: how the item is named in messages (file name, line number, identifier).
        inputs: the plugin's own representation (token ids, an image tensor, a molecule, ...).
        labels: indices of the classes present (weak, input-level labels).
        truth: optional ground truth used only for evaluation (boxes, spans, atoms, ...).
        unknown: indices of the classes whose label is missing (multi-task data): they count
            neither as present nor as absent, in training and in the metrics.
    """

    name: str
    inputs: Any
    labels: tuple[int, ...]
    truth: dict[str, Any] = field(default_factory=dict)
    unknown: tuple[int, ...] = ()


@dataclass
class BadItem:
    """An item that could not be read: its name and what is wrong with it."""

    name: str
    reason: str


@dataclass
class DataSplits:
    """A dataset as the engine uses it.

    Attributes:
        train, val, test: lists of :class:`Example`.
        classes: class names; labels index into it.
        multilabel: several classes per input (mAP, BCE) or exactly one (accuracy, CE).
        bad: items that could not be read, reported instead of silently dropped.
        builtin: the plugin's own demo data, whose bad items are known and part of the demo:
            they are reported and skipped without ``--skip-bad``.
        order: each example's position in the data as listed (name -> row), where the reader
            knows it (:meth:`grouped`, :meth:`shuffled`); :meth:`train_and_val` follows it.
    """

    train: list[Example]
    val: list[Example]
    test: list[Example]
    classes: list[str]
    multilabel: bool
    bad: list[BadItem] = field(default_factory=list)
    builtin: bool = False
    order: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def train_and_val(self) -> list[Example]:
        """The train and val examples in the order the data lists them (:attr:`order`; train
        then val where it is not known): a fit on both (the engine's refit) then depends on
        their union only, not on which of them were cut for validation, and sees them as a fit
        on the listed data does (the same inner cross-validation folds)."""
        return self.listed(self.train + self.val)

    def listed(self, examples: list[Example]) -> list[Example]:
        """``examples`` in the order the data lists them (:attr:`order`; those it does not know
        last, as given)."""
        last = len(self.order)
        return sorted(examples, key=lambda e: self.order.get(e.name, last))

    @classmethod
    def grouped(
        cls,
        rows: list[tuple[str | None, Example]],
        classes: list[str],
        multilabel: bool,
        bad: list[BadItem] | None = None,
        seed: int = 0,
    ) -> DataSplits:
        """``(split, example)`` rows as splits: each row's own ``train`` / ``val`` / ``test``
        split, or, when the data has no split column (``split`` None on every row), cut 70/15/15
        by ``seed`` as :meth:`shuffled` does."""
        if all(split is None for split, _ in rows):
            return cls.shuffled([e for _, e in rows], classes, multilabel, bad, seed)
        groups: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
        for split, example in rows:
            groups[split].append(example)
        order = {e.name: i for i, (_, e) in enumerate(rows)}
        return cls(groups["train"], groups["val"], groups["test"], classes, multilabel, bad or [],
                   order=order)  # fmt: skip

    @classmethod
    def shuffled(
        cls,
        examples: list[Example],
        classes: list[str],
        multilabel: bool,
        bad: list[BadItem] | None = None,
        seed: int = 0,
        fractions: tuple[float, float] = (0.7, 0.15),
    ) -> DataSplits:
        """Shuffle ``examples`` with ``seed`` and cut them into train / val / test by
        ``fractions`` (train, val; the rest is test)."""
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        mixed = [examples[i] for i in order]
        cut1 = int(fractions[0] * len(mixed))
        cut2 = int((fractions[0] + fractions[1]) * len(mixed))
        order = {e.name: i for i, e in enumerate(examples)}
        return cls(mixed[:cut1], mixed[cut1:cut2], mixed[cut2:], classes, multilabel, bad or [],
                   order=order)  # fmt: skip


class RegionEncoder(nn.Module):
    """Base class of region encoders: a collated batch -> region features and their mask.

    Subclasses set ``out_channels`` (D) and implement
    ``forward(inputs) -> (features (B, D, *regions) float, mask (B, *regions) bool or None)``.
    """

    out_channels: int
    #: For an encoder with a :meth:`row_table`: whether the warm start weights row ``i``'s
    #: count by its inverse document frequency in the training items, ``ln((1 + n) / (1 +
    #: df_i)) + 1`` (scikit-learn's smoothed idf), as a TF-IDF linear model of text does. The
    #: weight moves into the fitted row, so the model is the same linear model on counts; what
    #: changes is the L2 penalty, ``sum_i (W_i / idf_i)^2``: rare rows are penalised less.
    row_idf: bool = False
    #: For an encoder with a :meth:`row_table`: whether it multiplies each item's region
    #: features by ``l_ref / l``, ``l`` the item's :func:`~negev.nn.functional.row_count_norm`
    #: (the L2 norm of its row counts weighted as the warm start weights them: by the idf under
    #: :attr:`row_idf`; rows no training item has weigh 0) and ``l_ref`` a training-split
    #: constant: so that a sum of linear region scores is a linear model on L2-normalised
    #: (TF-IDF) counts, as scikit-learn's ``TfidfVectorizer`` gives them. ``l_ref`` is the
    #: training items' mean of ``l / n`` under a sum of ``n`` regions (of ``l`` under a mean):
    #: the scaled regions of an item of typical ``l / n`` then weigh 1 in all, not about ``n``,
    #: so the size of an optimizer step's effect does not grow with the items' typical length.
    #: The engine fits the weights and ``l_ref`` on the training split (:meth:`set_row_weights`).
    row_norm: bool = False

    def forward(self, inputs: Any) -> tuple[Tensor, Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def row_table(self) -> Tensor | None:
        """The linear region path, for an encoder whose feature of a region is one row of a
        learned table (a hashed embedding: Morgan environments, n-grams): that table, (F, D)
        (the feature of a region of row ``i`` is ``table[i]``), with :meth:`region_rows` giving
        each region's row. None (the default): the features are not table rows.
        :func:`negev.engine.warm_start.linear_warm_start` fits the model's linear term through
        it."""
        return None

    def region_rows(self, inputs: Any) -> tuple[Tensor, Tensor | None]:
        """For an encoder with a :meth:`row_table`: each region's row, (B, *regions) int64 in
        ``[0, F)``, and the region mask (B, *regions) bool or None, as ``forward`` gives it."""
        raise NotImplementedError(f"{type(self).__name__} has no linear region path")

    def set_row_weights(self, weights: Tensor, reference: float) -> None:
        """For a :attr:`row_norm` encoder: the (F,) weights of its rows in the item norm and the
        reference length ``l_ref``, kept with the model's weights."""
        raise NotImplementedError(f"{type(self).__name__} does not normalise its items")


class ModalityPlugin(abc.ABC):
    """What a modality supplies to negev. Subclass it and register the class as an entry point.

    Class attributes: ``name`` (the ``--modality`` value), ``description`` (one line).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: The encoder is a 2-D CNN over (B, C, H, W) inputs: on accelerators the engine runs it in
    #: the channels_last memory format.
    channels_last: ClassVar[bool] = False
    #: The plugin's options: a frozen dataclass of typed fields with defaults and help
    #: (:mod:`negev.plugins.options`), against which the engine checks ``config["plugin"]`` and
    #: which it fills with the defaults; None: no checking, the table is passed as given.
    options_class: ClassVar[type | None] = None

    def options_of(self, config: dict[str, Any] | None) -> Any:
        """The typed options (an ``options_class`` instance) of ``config["plugin"]``.

        Raises:
            ValueError: an unknown option or a value of the wrong type, named.
        """
        if self.options_class is None:
            raise TypeError(f"plugin {self.name!r} declares no options_class")
        table = (config or {}).get("plugin") or {}
        return parse_options(self.options_class, table, owner=self.name)

    #: ``build_encoder`` loads pretrained encoder weights from ``config["weights"]`` (a local
    #: file, ``--weights``); the engine refuses ``weights`` for a plugin that does not.
    takes_weights: ClassVar[bool] = False

    #: Each class of a multi-label dataset is a column of the data (a task: the molecule
    #: plugin's 0/1 columns), so a class the data lacks is unknown on every item; otherwise the
    #: classes are the labels found, and a class no item names is absent (negative) on all.
    classes_are_columns: ClassVar[bool] = False

    def default_config(self) -> dict[str, Any]:
        """Default engine options (epochs, lr, pooling, ...), and a ``plugin`` table for a plugin
        without ``options_class`` (with one, its defaults are the dataclass's)."""
        return {}

    @abc.abstractmethod
    def load_data(self, spec: str | None, config: dict[str, Any]) -> DataSplits:
        """Read the dataset at ``spec`` (a path or a spec string), or the built-in offline demo
        dataset when ``spec`` is None. Items that cannot be read go to ``DataSplits.bad``.

        ``config["labelled"]`` (default True) is False when the labels are not needed
        (``negev predict --data``): read every item without its labels (``labels=()``), from a
        file that has no label column or one whose labels are ignored; the classes may then be
        empty. A plugin whose format cannot be read without labels ignores the flag."""

    @abc.abstractmethod
    def build_encoder(self, config: dict[str, Any]) -> RegionEncoder:
        """The region encoder for this config (pretrained weights from a local path, if any)."""

    def load_item(
        self,
        example: Example,
        *,
        train: bool,
        generator: torch.Generator,
        view: dict[str, Any] | None = None,
    ) -> Example:
        """The per-item work of a batch, run in the DataLoader's worker processes: read and
        decode, resize, and augment when ``train``. Returns the example with ``inputs`` ready for
        :meth:`collate` (labels and truth unchanged). By default the example itself: a plugin
        that does everything in :meth:`collate` keeps working, in the training process.

        Args:
            train: a training item (augment it) or an evaluation item (never augment it).
            generator: the only source of randomness to use; seeded from (run seed, epoch,
                item), so that augmentations do not depend on which worker loads the item.
            view: one of :meth:`test_views` (evaluation only), None for the plain item.

        Raises:
            ValueError: naming the item's file when it cannot be read; the engine reports it.
        """
        del train, generator, view
        return example

    def test_views(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Test-time augmentation: the views of an item (arguments of :meth:`load_item`) whose
        class scores the engine averages when it evaluates on the test split; maps come from the
        first. By default one plain view."""
        del config
        return [{}]

    @abc.abstractmethod
    def collate(self, examples: list[Example]) -> dict[str, Tensor]:
        """Batch the inputs of ``examples`` into tensors (the encoder's ``inputs``). Called on
        examples returned by :meth:`load_item`; also on raw examples by code outside the
        engine. It runs in worker processes too: no CUDA here."""

    @abc.abstractmethod
    def read_input(self, text: str) -> Example:
        """One item given on the command line (``negev explain --input``): a path or a literal."""

    @abc.abstractmethod
    def render_evidence(
        self,
        example: Example,
        maps: Tensor,
        scores: Tensor,
        classes: list[str],
        out_dir: Path,
        selected: tuple[Tensor, Tensor] | None = None,
    ) -> list[Path]:
        """Write files a person opens (images, HTML) showing the evidence of one item.

        Args:
            maps: (C, *regions) class maps of the item (positive = evidence for the class,
                negative = evidence against). scores: (C,) class scores.
            selected: (high, low), two (C, *regions) bool masks of the regions the pooling kept
                (its k+ top and k- bottom regions; with ``pool_each_map``, those any map of the
                class kept, so a region may be in both), or None for a pooling without a hard
                selection (LSE).

        Returns:
            The files written.
        """

    def warm_start(self, config: dict[str, Any]) -> bool:
        """Whether the engine fits the model's linear path convexly before training
        (:func:`negev.engine.warm_start.linear_warm_start`: L2 logistic regression on the pooled
        region rows, C chosen on the validation split, the fit kept as epoch 0). The engine fits
        it where it applies (:func:`negev.engine.warm_start.applies`: an encoder with a
        :meth:`RegionEncoder.row_table` under a pooling with a linear term, ``sumwildcat``,
        ``gapwildcat``); under another pooling the model trains from scratch. False by
        default."""
        del config
        return False

    def fit_state(self, data: DataSplits, config: dict[str, Any]) -> dict[str, Any]:
        """Learn what the plugin needs from the training data (a vocabulary, statistics); the
        JSON-serialisable result is saved with every checkpoint and given back to
        :meth:`load_state` before a model is rebuilt. Nothing by default."""
        return {}

    def load_state(self, state: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        """Restore what :meth:`fit_state` learnt, with the run's ``config`` (called before
        ``build_encoder``, in training and when a saved model is loaded): the one place where a
        plugin keeps what its config-less hooks (``load_item``, ``collate``, ``read_input``,
        ``region_names``, ``render_evidence``, ``evidence_metrics``) need, best as one immutable
        object built from the options and the state. Plugins without state keep nothing. The
        engine passes ``config`` only to overrides whose signature takes it."""
        del state, config

    def region_names(self, example: Example) -> list[str | None] | None:
        """Readable names of the item's regions in flattened order (for the terminal), None for a
        region that does not exist in this item (padding); or None for no names at all."""
        return None

    def evidence_metrics(
        self,
        examples: list[Example],
        maps: list[Tensor],
        classes: list[str],
        scores: Tensor | None = None,
        model: nn.Module | None = None,
    ) -> dict[str, float]:
        """Localization / evidence metrics against the examples' ``truth`` (none by default).

        Args:
            maps: one (C, *regions) tensor per example. scores: (N, C) class scores when known.
            model: the trained model (``model(collate(items)) -> (scores, maps)``), for metrics
                that score modified items, such as faithfulness; the engine passes it to hooks
                whose signature has ``model``, so hooks written without it keep working.
        """
        return {}

    def write_evidence(
        self, predictions: Iterable[ItemPrediction], classes: list[str], out_dir: Path
    ) -> list[Path]:
        """Write the evidence of predicted items into ``out_dir`` in files that other tools
        read (``negev predict``). Called once per prediction with an iterator over every item,
        batch after batch: consume it once and write as it goes (a dataset may not fit in
        memory). File names come from each item's ``id`` (sanitised and unique).

        By default ``maps/<id>.npy`` per item: the (C, *regions) float32 class maps
        (:func:`negev.inference.outputs.save_region_map`: regions the item does not have hold
        NaN, trailing ones cut). A plugin adds its modality's formats (heatmaps at the input's
        size, per-token or per-atom scores, detected events) and may keep the default by calling
        ``save_region_map`` per item.

        Returns:
            The files written.
        """
        from negev.inference.outputs import save_region_map

        return [save_region_map(prediction, out_dir) for prediction in predictions]
