"""The plugin contract as a test: :func:`check_plugin` runs a plugin's hooks on its demo data.

A plugin author calls it from a test (``check_plugin(MyPlugin, options={"demo_size": 40})``);
every first-party plugin passes it. Each check fails with an :class:`AssertionError` that names
the plugin, the check and the item.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from negev.plugins.base import BadItem, DataSplits, Example, ModalityPlugin

__all__ = ["check_plugin"]


def check_plugin(
    plugin: type[ModalityPlugin] | ModalityPlugin,
    options: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    items: int = 4,
    bad_inputs: Sequence[str] = (),
) -> list[str]:
    """Run the contract on the plugin's built-in demo data; returns the checks passed.

    Checks, in order:

    - ``options``: the plugin table is checked against ``options_class`` (when declared).
    - ``data``: ``load_data(None, config)`` gives splits with a training item, class names,
      label (and ``unknown``) indices inside the class list, and bad items with a name and a
      reason; the same seed gives the same items.
    - ``state``: ``fit_state`` is JSON-serialisable; ``load_state`` takes it.
    - ``encoder``: ``build_encoder`` gives a module with an int ``out_channels``, the same
      weights for the same torch seed.
    - ``shapes``: ``load_item`` then ``collate`` of ``items`` training items, and the encoder's
      ``features (B, D, *regions)`` floating point with D = ``out_channels`` and ``mask``
      None or ``(B, *regions)`` bool.
    - ``augmentation``: ``load_item(train=True)`` with equally seeded generators gives equal
      inputs.
    - ``padding``: each item's class scores alone equal its scores in the batch (padding
      leaks nothing); junk features in the regions the mask rules out change no score.
    - ``region_names``: None, or one name per region of the item.
    - ``bad_inputs``: each text makes ``read_input`` (or ``load_item`` of what it returns)
      raise ``ValueError`` or ``OSError`` with a message, never another exception.
    - ``render``: ``render_evidence`` returns files that exist, all inside ``out_dir``, and
      writes nothing elsewhere (the working directory included).
    - ``evidence_metrics``: a dict of metric name -> float.

    Args:
        plugin: the plugin class (instantiated without arguments) or an instance.
        options: the plugin table (``--set`` values), e.g. a tiny demo size, to keep it fast.
        seed: the run seed of the config and of torch.
        items: items per batch checked.
        bad_inputs: ``--input`` texts the plugin must refuse with a clear error.
    """
    from negev.engine.config import RunConfig
    from negev.engine.evaluation import evidence_metrics
    from negev.engine.model import EvidenceModel
    from negev.engine.trainer import load_plugin_state
    from negev.nn import EvidenceHead, WildcatPool
    from negev.plugins.options import plugin_table

    instance = plugin() if isinstance(plugin, type) else plugin
    name = getattr(instance, "name", type(instance).__name__)
    passed: list[str] = []

    def check(condition: bool, what: str, detail: str) -> None:
        if not condition:
            raise AssertionError(f"check_plugin({name}): {what}: {detail}")

    base = {**instance.default_config(), "modality": name, "seed": seed, "workers": 0}
    run = RunConfig.build({k: v for k, v in base.items() if k != "plugin"})
    run.plugin = plugin_table(instance, base.get("plugin") or {}, options or {})
    config = run.to_dict()
    passed.append("options")

    data = instance.load_data(None, config)
    _check_data(data, check)
    again = instance.load_data(None, config)
    check(
        [(e.name, e.labels) for e in again.train] == [(e.name, e.labels) for e in data.train],
        "data",
        "load_data with the same seed gave other training items",
    )
    passed.append("data")

    state = instance.fit_state(data, config)
    try:
        json.dumps(state)
    except TypeError as exc:
        raise AssertionError(f"check_plugin({name}): state: not JSON-serialisable: {exc}") from None
    load_plugin_state(instance, state, run)
    passed.append("state")

    torch.manual_seed(seed)
    encoder = instance.build_encoder(config)
    torch.manual_seed(seed)
    twin = instance.build_encoder(config)
    check(isinstance(encoder, nn.Module), "encoder", f"not an nn.Module: {encoder!r}")
    channels = getattr(encoder, "out_channels", None)
    check(isinstance(channels, int) and channels > 0, "encoder", f"out_channels {channels!r}")
    weights, other = encoder.state_dict(), twin.state_dict()
    check(
        all(torch.equal(weights[k], other[k]) for k in weights),
        "encoder",
        "two encoders built after the same torch seed differ",
    )
    passed.append("encoder")

    examples = data.train[:items]
    plain = [_load(instance, e, False, seed) for e in examples]
    model = EvidenceModel(encoder, EvidenceHead(channels, len(data.classes), pool=WildcatPool(0.3)))
    model.eval()
    with torch.no_grad():
        features, mask = encoder(instance.collate(plain))
    batch = len(examples)
    check(
        features.is_floating_point() and features.dim() >= 3,
        "shapes",
        f"features must be (B, D, *regions) floating point, got {tuple(features.shape)} "
        f"{features.dtype}",
    )
    check(
        tuple(features.shape[:2]) == (batch, channels),
        "shapes",
        f"features {tuple(features.shape)}: expected (B={batch}, D={channels}, *regions)",
    )
    regions = tuple(features.shape[2:])
    check(
        mask is None or (mask.dtype == torch.bool and tuple(mask.shape) == (batch, *regions)),
        "shapes",
        f"mask must be None or (B, *regions) = {(batch, *regions)} bool, got "
        f"{None if mask is None else (tuple(mask.shape), mask.dtype)}",
    )
    passed.append("shapes")

    first = [instance.collate([_load(instance, e, True, seed)]) for e in examples]
    second = [instance.collate([_load(instance, e, True, seed)]) for e in examples]
    for example, a, b in zip(examples, first, second, strict=True):
        check(_same(a, b), "augmentation", f"{example.name}: equal generators, other inputs")
    passed.append("augmentation")

    with torch.no_grad():
        together = model(instance.collate(plain)).scores
        alone = [model(instance.collate([item])) for item in plain]
        for example, row, single in zip(examples, together, alone, strict=True):
            check(
                torch.allclose(row, single.scores[0], rtol=1e-4, atol=1e-4),
                "padding",
                f"{example.name}: class scores {single.scores[0].tolist()} alone, "
                f"{row.tolist()} in a batch",
            )
        if mask is not None and not bool(mask.all()):
            junk = features.clone()
            hidden = (~mask).unsqueeze(1).expand_as(junk)
            junk[hidden] = 1e4 * torch.randn(int(hidden.sum()))
            clean, dirty = model.head(features, mask).scores, model.head(junk, mask).scores
            check(
                torch.allclose(clean, dirty, rtol=1e-4, atol=1e-4),
                "padding",
                "junk features in the regions the mask rules out changed the scores",
            )
    passed.append("padding")

    for example, single in zip(examples, alone, strict=True):
        names = instance.region_names(example)
        count = math.prod(single.maps.shape[2:])
        check(
            names is None or len(names) == count,
            "region_names",
            f"{example.name}: {None if names is None else len(names)} names, {count} regions",
        )
    passed.append("region_names")

    for text in bad_inputs:
        try:
            _load(instance, instance.read_input(text), False, seed)
        except (ValueError, OSError) as exc:
            check(bool(str(exc)), "bad_inputs", f"{text!r}: an error without a message")
        else:
            check(False, "bad_inputs", f"read_input accepted {text!r}")
    passed.append("bad_inputs")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out_dir = root / "out" / "item"
        before, cwd_before = _files(root), set(Path.cwd().iterdir())
        single = alone[0]
        written = instance.render_evidence(
            examples[0], single.maps[0], single.scores[0], data.classes, out_dir
        )
        check(isinstance(written, list) and bool(written), "render", f"returned {written!r}")
        for path in written:
            path = Path(path)
            check(path.is_file(), "render", f"{path} was returned but not written")
            check(
                path.resolve().is_relative_to(out_dir.resolve()),
                "render",
                f"{path} is outside out_dir {out_dir}",
            )
        outside = {p for p in _files(root) - before if not p.is_relative_to(out_dir)}
        check(not outside, "render", f"wrote outside out_dir: {sorted(map(str, outside))}")
        stray = set(Path.cwd().iterdir()) - cwd_before
        check(not stray, "render", f"wrote into the working directory: {sorted(map(str, stray))}")
    passed.append("render")

    maps = [single.maps[0] for single in alone]
    scores = torch.cat([single.scores for single in alone])
    metrics = evidence_metrics(
        instance, examples, maps, data.classes, scores, model, data.multilabel
    )
    check(
        isinstance(metrics, dict)
        and all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items()),
        "evidence_metrics",
        f"expected a dict of name -> float, got {metrics!r}",
    )
    passed.append("evidence_metrics")
    return passed


def _check_data(data: DataSplits, check) -> None:
    check(isinstance(data, DataSplits), "data", f"load_data returned {type(data).__name__}")
    check(bool(data.train), "data", "the demo has no training item")
    check(
        bool(data.classes) and all(isinstance(c, str) for c in data.classes),
        "data",
        f"classes must be names, got {data.classes!r}",
    )
    count = len(data.classes)
    for example in data.train + data.val + data.test:
        check(isinstance(example, Example), "data", f"not an Example: {example!r}")
        for field in ("labels", "unknown"):
            values = getattr(example, field)
            check(
                all(isinstance(v, int) and 0 <= v < count for v in values),
                "data",
                f"{example.name}: {field} {values!r} outside the {count} classes",
            )
    for bad in data.bad:
        check(
            isinstance(bad, BadItem) and bool(bad.name) and bool(bad.reason),
            "data",
            f"a bad item must have a name and a reason: {bad!r}",
        )


def _load(plugin: ModalityPlugin, example: Example, train: bool, seed: int) -> Example:
    generator = torch.Generator().manual_seed(seed)
    return plugin.load_item(example, train=train, generator=generator)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _files(root: Path) -> set[Path]:
    found = set()
    for folder, _, names in os.walk(root):
        found.update(Path(folder) / n for n in names)
    return found
