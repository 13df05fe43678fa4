"""Model selection on the validation split: a small search over the model and the optimiser.

Optuna's TPE sampler (seeded) proposes each trial from this space; every trial is an ordinary
run of :func:`~negev.engine.train` with ``evaluate_test=False`` (the test split is never
collated nor scored) and early stopping (``patience``), scored by its best validation value of
the run's ``monitor``. The first trial is the configuration as given (the plugin's defaults,
the config file, the command line), so the search can only keep or beat it on validation; the
best trial replaces it only when ahead by more than ``start_margin`` bootstrap standard errors of
the paired difference on the validation split (:mod:`negev.engine.selection`: the one-SE rule;
the best of many trials is ahead of the first by chance alone on a small split), a margin raised
for the number of trials compared (Bonferroni, :func:`~negev.engine.selection.family_margin`).

========================= ===================================================================
parameter                 values
========================= ===================================================================
``encoder`` (plugin)      the plugin's ``search_encoders`` (e.g. molecule: hashed, mpnn)
``pooling``               ``gap``; ``wildcat`` with ``kmax`` = ``kmin`` in [0.02, 0.5] (a
                          fraction of the regions) and ``alpha`` in [0, 1]; ``lse`` with
                          ``beta_pos`` = -``beta_neg`` in [0.3, 10] (log) and ``alpha`` in [0, 1];
                          and the configured pooling when it is none of these, its k and alpha
                          searched as WILDCAT's when it takes ``kmax``, ``kmin`` and ``alpha``
                          (``sumwildcat``, ``gapwildcat``, the bags plugin's ``meanwildcat``:
                          a plugin's warm start applies to them), its beta and alpha as LSE's
                          when it takes ``beta_pos``, ``beta_neg`` and ``alpha``, else as
                          configured (``maxmin``, ``gabmil``, ...)
``lr``                    [3e-4, 1e-1] (log)
``weight_decay``          [1e-5, 1e-1] (log)
========================= ===================================================================

Run directory: ``trials/trial-NNN/`` holds each trial's run (metrics, and checkpoints for the
chosen one only), ``trials.jsonl`` one line per trial, ``trials.md`` the table; the chosen
trial's checkpoints are copied into the run directory itself, so its ``best`` checkpoint is the
chosen model (``negev evaluate`` / ``explain`` use it); then the test split is scored once, into
``final_metrics.json``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from negev.engine.checkpoint import BEST, LATEST, clear_run, holds_run, metrics_json, write_file
from negev.engine.config import RunConfig
from negev.engine.lock import RunLock
from negev.engine.scoring import evaluate
from negev.engine.selection import beats_reference, family_margin
from negev.engine.trainer import (
    check_plugin_options,
    prepare_data,
    refuse_ignored_options,
    train,
)
from negev.errors import ConfigError, NegevError
from negev.nn import POOLINGS as POOL_REGISTRY
from negev.plugins import ModalityPlugin
from negev.plugins.options import plugin_table

__all__ = ["SearchResult", "TrialRecord", "search", "suggest"]

#: The space's poolings and how each is varied: ``wildcat`` (k and alpha), ``lse`` (beta and
#: alpha) or None (no parameter). A search adds the configured pooling (:func:`_space`).
POOLINGS: dict[str, str | None] = {"gap": None, "wildcat": "wildcat", "lse": "lse"}
K_RANGE = (0.02, 0.5)
BETA_RANGE = (0.3, 10.0)
LR_RANGE = (3e-4, 1e-1)
WEIGHT_DECAY_RANGE = (1e-5, 1e-1)
ADOPTED = (LATEST, BEST, "metrics.jsonl", "bad_items.json")


@dataclass
class TrialRecord:
    """One trial: its options (``params``), the best validation value of the monitor and at which
    epoch, the epochs trained (early stopping), every validation metric of that epoch, the
    seconds it took, its state (``complete`` or ``fail``, with ``error``) and its run folder."""

    number: int
    params: dict[str, Any]
    value: float | None
    best_epoch: int | None
    epochs_run: int
    val_metrics: dict[str, float]
    seconds: float
    state: str
    run: str
    error: str | None = None


@dataclass
class SearchResult:
    """The run directory, the chosen trial, every trial, and the chosen model's test metrics
    (``{}`` when the test split was not evaluated)."""

    run_dir: Path
    best: TrialRecord
    trials: list[TrialRecord]
    monitor: str
    metrics: dict[str, float] = field(default_factory=dict)


def suggest(
    trial: optuna.Trial,
    encoders: tuple[str, ...] = (),
    poolings: dict[str, str | None] = POOLINGS,
) -> dict[str, Any]:
    """Sample one point of the space (the table above) as run options; ``plugin`` holds the
    plugin's own (``encoder`` when there is a choice). ``poolings``: name -> how it is varied,
    as :data:`POOLINGS` (the space's, plus the configured pooling: :func:`_space`)."""
    params: dict[str, Any] = {"pooling": trial.suggest_categorical("pooling", tuple(poolings))}
    family = poolings[params["pooling"]]
    if family == "wildcat":
        k = trial.suggest_float("k", *K_RANGE, log=True)
        params.update(kmax=k, kmin=k, alpha=trial.suggest_float("alpha", 0.0, 1.0))
    elif family == "lse":
        beta = trial.suggest_float("beta", *BETA_RANGE, log=True)
        params.update(beta_pos=beta, beta_neg=-beta, alpha=trial.suggest_float("alpha", 0.0, 1.0))
    params["lr"] = trial.suggest_float("lr", *LR_RANGE, log=True)
    params["weight_decay"] = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
    if len(encoders) > 1:
        params["plugin"] = {"encoder": trial.suggest_categorical("encoder", encoders)}
    return params


def search(
    plugin: ModalityPlugin,
    config: RunConfig,
    *,
    trials: int = 20,
    timeout: float | None = None,
    encoders: tuple[str, ...] | None = None,
    patience: int | None = None,
    evaluate_test: bool = True,
    overwrite: bool = False,
    quiet: bool = False,
    console: Console | None = None,
) -> SearchResult:
    """Search the space for the best validation value of ``config``'s monitor; leave the chosen
    model as the ``best`` checkpoint of ``config.out`` and score the test split once.

    Args:
        plugin, config: the run as :func:`~negev.engine.train` takes it; its values are the first
            trial and the fixed options of every trial (but a trial under another encoder,
            which has the other encoder's plugin options at their defaults).
        trials: the number of trials (each a training run). timeout: stop starting trials after
            that many seconds.
        encoders: the plugin ``encoder`` values to try (default: the plugin's
            ``search_encoders``, if it has any, else only the configured encoder).
        patience: early stopping of each trial (default: ``config.patience``, else a quarter of
            the epochs, at least 2).
        evaluate_test: score the chosen model on the test split (after the search).
        overwrite: replace a run (or search) already in ``config.out``.

    The run directory is locked for the search (see :class:`~negev.engine.lock.RunLock`).
    """
    console = console or Console(stderr=True, quiet=quiet)
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    check_plugin_options(plugin, config)
    if encoders is None:
        encoders = tuple(getattr(plugin, "search_encoders", ()))
    current = str(config.plugin.get("encoder", ""))
    if len(encoders) > 1 and current and current not in encoders:
        encoders = (current, *encoders)
    refuse_ignored_options(plugin, config, encoders)
    with RunLock(config.out):
        return _search(
            plugin, config, trials, timeout, encoders, patience, evaluate_test, overwrite, console
        )  # fmt: skip


def _search(
    plugin: ModalityPlugin, config: RunConfig, trials: int, timeout: float | None,
    encoders: tuple[str, ...], patience: int | None, evaluate_test: bool, overwrite: bool,
    console: Console,
) -> SearchResult:  # fmt: skip
    """:func:`search` in a run directory this process holds."""
    run_dir = Path(config.out)
    trial_root = run_dir / "trials"
    if (holds_run(run_dir) or trial_root.exists()) and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run: pass --overwrite to replace it (or choose another "
            "--out)"
        )
    if overwrite:
        if run_dir.is_dir():
            clear_run(run_dir)
        shutil.rmtree(trial_root, ignore_errors=True)
        for name in ("trials.jsonl", "trials.md"):
            (run_dir / name).unlink(missing_ok=True)
    # Read the data once up front: bad items stop here, before any trial, with their reasons.
    data = prepare_data(plugin, config, run_dir, required=("train", "val"), check_classes=True)
    patience = patience or config.patience or max(2, config.epochs // 4)
    trial_root.mkdir(parents=True, exist_ok=True)
    records: list[TrialRecord] = []
    monitor = {"name": None}
    val_scores: dict[int, Any] = {}  # trial number -> its kept epoch's validation scores (N, C)

    poolings = _space(config)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, encoders, poolings)
        # another encoder's options go back to their defaults: they have no effect here
        options = plugin_table(plugin, config.plugin, params.pop("plugin", {}), reset_ignored=True)
        out = trial_root / f"trial-{trial.number:03d}"
        # a trial that picks another pooling drops the configured one's parameters (build)
        overrides = {**params, "plugin": options, "out": str(out), "patience": patience}
        trial_config = RunConfig.build(config.to_dict(), overrides)
        start = time.perf_counter()
        shown = {**params, **({"encoder": options["encoder"]} if len(encoders) > 1 else {})}
        try:
            result = train(
                plugin, trial_config, overwrite=True, quiet=True, evaluate_test=False,
                console=Console(stderr=True, quiet=True),
            )  # fmt: skip
        except (RuntimeError, ValueError) as exc:  # a diverging trial fails alone
            records.append(
                TrialRecord(trial.number, shown, None, None, _epochs_run(out), {},
                            time.perf_counter() - start, "fail", str(out), str(exc))
            )  # fmt: skip
            console.print(f"trial {trial.number}: failed ({exc})", highlight=False)
            raise optuna.TrialPruned() from exc
        monitor["name"] = result.monitor
        val_scores[trial.number] = result.val_scores
        value = result.best_value if result.best_value is not None else math.nan
        record = TrialRecord(
            trial.number, shown, value, result.best_epoch, _epochs_run(out), result.val_metrics,
            time.perf_counter() - start, "complete", str(out),
        )  # fmt: skip
        records.append(record)
        console.print(
            f"trial {trial.number}: val {result.monitor} {value:.4f} (epoch {result.best_epoch}, "
            f"{record.seconds:.0f} s) {_describe(shown)}",
            highlight=False,
        )
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed)
    )
    study.enqueue_trial(_as_point(config, encoders, poolings))
    study.optimize(objective, n_trials=trials, timeout=timeout)
    done = [r for r in records if r.state == "complete" and not math.isnan(r.value)]
    if not done:
        raise NegevError(f"every trial failed; see {trial_root}")
    best = max(done, key=lambda r: (r.value, -r.number))  # ties: the earlier trial
    best = _one_se(best, done, val_scores, data, monitor["name"], config, console)
    _adopt(Path(best.run), run_dir)
    for record in records:
        if record.run != best.run:
            _drop_checkpoints(Path(record.run))
    _write_trials(run_dir, records, best, monitor["name"])
    console.print(f"chose trial {best.number}: val {monitor['name']} {best.value:.4f}")
    metrics: dict[str, float] = {}
    if evaluate_test:
        metrics = evaluate(run_dir, "test", device=config.device).metrics
        write_file(run_dir / "final_metrics.json", metrics_json(metrics))
    return SearchResult(run_dir, best, records, monitor["name"], metrics)


def _one_se(
    best: TrialRecord, done: list[TrialRecord], val_scores: dict[int, Any], data,
    monitor: str, config: RunConfig, console: Console,
) -> TrialRecord:  # fmt: skip
    """The first trial (the configuration as given) unless ``best`` is ahead of it on validation
    by more than ``config.start_margin`` standard errors (:func:`beats_reference`), raised for
    the other trials that were scored (:func:`family_margin`)."""
    first = next((r for r in done if r.number == 0), None)
    if first is None or best is first:
        return best
    scores, reference = val_scores.get(best.number), val_scores.get(0)
    if scores is None or reference is None:
        return best
    num_classes = len(data.classes)
    rivals = len(done) - 1  # the scored trials besides trial 0 (best is one of them)
    margin = family_margin(config.start_margin, rivals)
    if beats_reference(
        best.value, first.value, scores, reference, data.val, num_classes, data.multilabel,
        monitor, margin, config.seed,
    ):  # fmt: skip
        return best
    held = f" ({config.start_margin:g} for one, held over {rivals} trials)" if rivals > 1 else ""
    console.print(
        f"trial {best.number} (val {monitor} {best.value:.4f}) is not ahead of trial 0 "
        f"({first.value:.4f}) by {margin:.3g} standard error(s){held}: keeping trial 0"
    )
    return first


def _wildcat_point(config: RunConfig) -> bool:
    """Whether the configured pooling is the space's WILDCAT (WELDON: WILDCAT with kmin = kmax)
    at a fraction k."""
    return config.pooling in ("wildcat", "weldon") and isinstance(config.kmax, float)


def _space(config: RunConfig) -> dict[str, str | None]:
    """:data:`POOLINGS` plus the configured pooling when it is none of them, varied as WILDCAT
    when it takes ``kmax``, ``kmin`` and ``alpha`` at a fraction k, as LSE when it takes
    ``beta_pos``, ``beta_neg`` and ``alpha``, else not at all (so the first trial is the
    configuration as given)."""
    if config.pooling in POOLINGS or _wildcat_point(config):
        return dict(POOLINGS)
    resolved = POOL_REGISTRY.resolve(config.pooling, config.pooling_params())
    family = None
    if {"kmax", "kmin", "alpha"} <= resolved.keys() and isinstance(resolved["kmax"], float):
        family = "wildcat"
    elif {"beta_pos", "beta_neg", "alpha"} <= resolved.keys():
        family = "lse"
    return {**POOLINGS, config.pooling: family}


def _as_point(
    config: RunConfig, encoders: tuple[str, ...], poolings: dict[str, str | None]
) -> dict[str, Any]:
    """The configured options as a point of the space ``poolings`` (:func:`_space`): the first
    trial (WILDCAT at a count k, which the space does not hold, is tried as GAP)."""
    point: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if _wildcat_point(config):
        point.update(pooling="wildcat", k=config.kmax, alpha=config.alpha)
    elif config.pooling == "lse":
        point.update(pooling="lse", beta=config.beta_pos, alpha=config.alpha)
    elif config.pooling in poolings and config.pooling not in POOLINGS:  # the configured one
        resolved = POOL_REGISTRY.resolve(config.pooling, config.pooling_params())
        point["pooling"] = config.pooling
        if poolings[config.pooling] == "wildcat":
            point.update(k=resolved["kmax"], alpha=resolved["alpha"])
        elif poolings[config.pooling] == "lse":
            point.update(beta=resolved["beta_pos"], alpha=resolved["alpha"])
    else:
        point["pooling"] = "gap"
    if len(encoders) > 1:
        point["encoder"] = str(config.plugin.get("encoder", encoders[0]))
    return point


def _epochs_run(out: Path) -> int:
    """Epochs trained (the warm start's epoch-0 record is not one)."""
    metrics = out / "metrics.jsonl"
    if not metrics.is_file():
        return 0
    return sum(json.loads(line).get("epoch", 0) > 0 for line in metrics.read_text().splitlines())


def _describe(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
        if k not in ("kmin", "beta_neg")
    )


def _adopt(trial_run: Path, run_dir: Path) -> None:
    """Copy the chosen trial's checkpoints and pointers into the run directory."""
    for folder in sorted(trial_run.glob("checkpoint-*")):
        shutil.copytree(folder, run_dir / folder.name)
    for name in ADOPTED:
        if (trial_run / name).is_file():
            shutil.copy2(trial_run / name, run_dir / name)


def _drop_checkpoints(trial_run: Path) -> None:
    """A trial not chosen keeps its metrics and config only (its weights would be dead weight)."""
    for folder in trial_run.glob("checkpoint-*"):
        shutil.rmtree(folder)
    for name in (LATEST, BEST):
        (trial_run / name).unlink(missing_ok=True)


def _write_trials(
    run_dir: Path, records: list[TrialRecord], best: TrialRecord, monitor: str | None
) -> None:
    write_file(run_dir / "trials.jsonl", "".join(json.dumps(asdict(r)) + "\n" for r in records))
    lines = [
        f"# Search: {len(records)} trials, chosen by validation {monitor}",
        "",
        "Trial 0 is the configuration as given; another trial is chosen only when ahead of it by "
        "more than `start_margin` bootstrap standard errors (the one-SE rule), raised for the "
        "number of trials compared (Bonferroni).",
        "",
        f"| trial | val {monitor} | best epoch | epochs run | seconds | options |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        value = "failed" if r.value is None else f"{r.value:.4f}"
        mark = " (chosen)" if r is best else ""
        epoch = "-" if r.best_epoch is None else r.best_epoch
        lines.append(
            f"| {r.number}{mark} | {value} | {epoch} | {r.epochs_run} | "
            f"{r.seconds:.0f} | {_describe(r.params)} |"
        )
    write_file(run_dir / "trials.md", "\n".join(lines) + "\n")
