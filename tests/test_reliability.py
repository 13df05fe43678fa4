"""Run directories, checkpoints and option values under faults: one writer per run, no run
clobbered or mixed, the newest intact checkpoint used, every bad file or value named in one line.
Each test here failed on the engine before these guarantees (docs/reliability.md)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import typer
from torch import nn
from typer.testing import CliRunner

from negev.engine import resolve_config, train
from negev.engine import trainer as trainer_module
from negev.engine.checkpoint import (
    CheckpointError,
    RunWarning,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from negev.engine.lock import RunLockedError
from negev_cli.app import app
from negev_cli.errors import friendly_errors

SMALL = {"modality": "tokens", "batch_size": 16, "plugin": {"demo_size": 200}}


def run(out: Path, epochs: int, resume: bool = False, overwrite: bool = False, **options):
    plugin, config = resolve_config({}, {**SMALL, "out": str(out), "epochs": epochs, **options})
    return train(plugin, config, resume=resume, overwrite=overwrite, quiet=True)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(result) -> str:
    """The error line of a failed command, checked to be a single line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 2-epoch run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    run(out, 2)
    return out


# --- one writer per run directory ------------------------------------------------------------

HOLD = """
import sys, time
from negev.engine.lock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_fails_at_once_naming_the_holder_and_a_dead_holder_is_taken_over(
    tmp_path,
):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        with pytest.raises(RunLockedError, match=f"in use by process {holder.pid} on host"):
            run(out, 1)
        assert time.perf_counter() - start < 5  # at once, no waiting
        assert not (out / "metrics.jsonl").exists()  # nothing written by the refused run
        result = invoke("train", "-m", "tokens", "--out", str(out), "--overwrite", "-q")
        assert f"in use by process {holder.pid}" in one_line_error(result)
    finally:
        holder.kill()  # dies holding the lock (SIGKILL: nothing released by the process)
        holder.wait()
        holder.stdout.close()
    with pytest.warns(RunWarning, match=f"took over the lock of process {holder.pid}"):
        run(out, 1)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_tune_holds_the_lock_too(tmp_path):
    from negev.engine.search import search

    out = tmp_path / "search"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        plugin, config = resolve_config({}, {**SMALL, "out": str(out), "epochs": 1})
        with pytest.raises(RunLockedError, match=f"process {holder.pid}"):
            search(plugin, config, trials=1, quiet=True)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# --- no run clobbered, nothing old resumed ---------------------------------------------------


def test_overwrite_that_dies_before_its_first_epoch_resumes_nothing_of_the_old_run(
    tmp_path, monkeypatch
):
    out, reference = tmp_path / "run", tmp_path / "reference"
    run(out, 2, seed=0)
    with pytest.raises(ValueError, match="already holds a run"):
        run(out, 2, seed=5)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # dies during the first epoch

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "_train_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            run(out, 2, seed=5, overwrite=True)
    assert not list(out.glob("checkpoint-*")) and not (out / "latest.json").exists()
    # the resume starts the new run again: it is the seed-5 run, with nothing of the seed-0 one
    run(out, 2, seed=5, resume=True)
    run(reference, 2, seed=5)
    assert (out / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    assert (out / "final_metrics.json").read_text() == (
        reference / "final_metrics.json"
    ).read_text()


def test_resume_of_a_directory_without_a_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no run to resume"):
        run(tmp_path / "empty", 1, resume=True)


# --- keep N checkpoints, fall back to the newest intact one ----------------------------------


def test_the_last_keep_checkpoints_are_kept_and_a_resume_falls_back_past_broken_files(
    tmp_path, monkeypatch
):
    out, reference = tmp_path / "run", tmp_path / "reference"
    result = run(reference, 5, keep=2)
    kept = {p.name for p in reference.glob("checkpoint-*")}
    assert kept == {"checkpoint-0004", "checkpoint-0005", f"checkpoint-{result.best_epoch:04d}"}

    epochs = []

    def killed_in_epoch_5(*args, **kwargs):
        epochs.append(None)
        if len(epochs) == 5:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    train_epoch = trainer_module._train_epoch
    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "_train_epoch", killed_in_epoch_5)
        with pytest.raises(KeyboardInterrupt):
            run(out, 5, keep=2)

    (out / "latest.json").write_text("{not json")
    with pytest.warns(RunWarning, match=r"latest\.json is not a checkpoint pointer"):
        assert load_checkpoint(out)["path"].name == "checkpoint-0004"
    # a truncated weights file, and a record cut short by a kill: the resume takes epoch 3
    weights = out / "checkpoint-0004" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4])
    with open(out / "metrics.jsonl", "a") as file:
        file.write('{"epoch": 5, "train_lo')
    with pytest.warns(RunWarning) as caught:
        run(out, 5, keep=2, resume=True)
    shown = " ".join(str(w.message) for w in caught)
    assert "checkpoint-0004/model.safetensors" in shown and "metrics.jsonl:5" in shown
    # training is deterministic: falling back to epoch 3 gives the uninterrupted run
    assert (out / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    assert (out / "final_metrics.json").read_text() == (
        reference / "final_metrics.json"
    ).read_text()


class Payload:
    """A pickle that would create a file if it were ever unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize(
    ("broken", "damage"),
    [
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:4])),
        ("model.safetensors", _truncate),
        ("config.json", lambda p: p.write_text("{")),
        ("state.pt", _truncate),
        ("state.pt", lambda p: p.write_bytes(b"not a checkpoint")),
        ("state.pt", lambda p: torch.save({"epoch": 0, "x": Payload(p.with_name("ran"))}, p)),
        ("state.pt", lambda p: torch.save({"epoch": 0}, p)),  # a foreign, harmless state
    ],
)
def test_an_unreadable_checkpoint_is_an_error_naming_its_file(trained, tmp_path, broken, damage):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    for folder in out.glob("checkpoint-*"):
        damage(folder / broken)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(out, with_state=True)
    message = str(error.value)
    assert f"checkpoint-0002/{broken}" in message and "\n" not in message
    assert "weights_only" not in message  # torch's advice to unpickle it is not passed on
    assert not list(out.rglob("ran"))  # the pickle never ran
    result = invoke("train", "-m", "tokens", "--out", str(out), "--epochs", "3", "--resume", "-q")
    assert f"checkpoint-0002/{broken}" in one_line_error(result)


def test_evaluate_falls_back_from_a_broken_best_checkpoint_with_a_warning(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    best = json.loads((out / "best.json").read_text())["checkpoint"]
    (out / best / "model.safetensors").write_bytes(b"")
    result = invoke("evaluate", "--checkpoint", str(out), "--split", "val")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"{best}/model.safetensors" in warning[0]
    if best != "checkpoint-0002":
        assert "(checkpoint-0002)" in result.output
    with pytest.warns(RunWarning):
        assert find_checkpoint(out, "best") != out / best


# --- disk full, file modes -------------------------------------------------------------------


def test_a_full_disk_names_the_file_and_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    model = nn.Linear(3, 2)
    meta = {"modality": "tokens", "classes": ["a", "b"], "multilabel": False, "config": {}}
    state = {"epoch": 0, "optimizer": {}, "scheduler": {}, "rng": torch.get_rng_state()}
    save_checkpoint(out, 1, model, meta, state)

    def full(descriptor):
        # what fsync(2) says when the blocks written could not be allocated
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full)
        with pytest.raises(OSError, match="no space left on device") as error:
            save_checkpoint(out, 2, model, meta, {**state, "epoch": 1})
    assert "checkpoint-0002" in error.value.filename
    assert load_checkpoint(out, with_state=True)["path"].name == "checkpoint-0001"
    assert not (out / "checkpoint-0002").exists()
    assert not [p for p in out.rglob("*.tmp")]

    @friendly_errors
    def command():
        raise error.value

    cli = typer.Typer()
    cli.command()(command)
    result = CliRunner().invoke(cli, [])
    assert f"{error.value.filename}: no space left on device" in result.output


def test_every_run_file_gets_the_same_mode_from_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        out = run(tmp_path / "run", 2).run_dir
    finally:
        os.umask(previous)
    # the empty .negev.lock is filelock's (versions before 4 give it 0644 whatever the umask)
    files = {
        str(p.relative_to(out)): p.stat().st_mode & 0o777
        for p in out.rglob("*")
        if p.is_file() and p.name != ".negev.lock"
    }
    assert any(name.endswith("state.pt") for name in files)
    assert set(files.values()) == {0o640}, files


# --- values: one line naming the option ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--lr", "inf"], "lr"),
        (["--lr", "nan"], "lr"),
        (["--lr", "0"], "lr"),
        (["--lr", "-0.1"], "lr"),
        (["--weight-decay", "nan"], "weight_decay"),
        (["--seed", str(2**70)], "seed"),
        (["--seed", "-1"], "seed"),
        (["--keep", "0"], "keep"),
        (["--weights", "/etc/passwd"], "weights"),
    ],
)
def test_bad_values_are_one_line_naming_the_option(tmp_path, args, named):
    result = invoke(
        "train", "-m", "tokens", "--out", str(tmp_path / "run"), "--epochs", "1",
        "--set", "demo_size=100", "-q", *args,
    )  # fmt: skip
    assert re.match(rf"error: {named}\b", one_line_error(result))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("modality", ["tokens", "text", "molecule"])
def test_weights_are_refused_by_a_plugin_that_takes_none(tmp_path, modality):
    pytest.importorskip(f"negev_{modality}" if modality != "tokens" else "negev_example_plugin")
    with pytest.raises(ValueError, match=f"the {modality} plugin takes no pretrained weights"):
        resolve_config({}, {"modality": modality, "weights": "/etc/passwd"})


def test_explain_top_below_one_is_refused(trained):
    result = invoke("explain", "--checkpoint", str(trained), "-i", "3 1 2", "--top", "-3")
    assert "--top must be >= 1, got -3" in one_line_error(result)


def test_changing_a_model_option_on_resume_is_one_line_naming_it(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = (out / "metrics.jsonl").read_text()
    result = invoke(
        "train", "-m", "tokens", "--out", str(out), "--epochs", "3", "--resume", "-q",
        "--num-maps", "3", "--set", "demo_size=200", "--batch-size", "16",
    )  # fmt: skip
    line = one_line_error(result)
    assert "num_maps is 3 here, 1 in the run" in line and "cannot change on resume" in line
    assert (out / "metrics.jsonl").read_text() == before
    # the same weights would load (one map): the head's options are compared all the same
    result = invoke(
        "train", "-m", "tokens", "--out", str(out), "--epochs", "3", "--resume", "-q",
        "--pool-each-map", "--set", "demo_size=200", "--batch-size", "16",
    )  # fmt: skip
    line = one_line_error(result)
    assert "pool_each_map is True here, False in the run" in line
    assert (out / "metrics.jsonl").read_text() == before


def test_a_run_saved_with_every_pooling_parameter_still_resumes(trained, tmp_path):
    """Checkpoints written before the pooling registry recorded every pooling parameter (a
    wildcat run's beta_pos, beta_neg): a resume reads them as load_model does, not as a change."""
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    for path in out.glob("checkpoint-*/config.json"):
        meta = json.loads(path.read_text())
        meta["config"].update(beta_pos=5.0, beta_neg=-5.0)
        del meta["config"]["pool_each_map"]  # and an option it predates
        path.write_text(json.dumps(meta))
    run(out, 3, resume=True)
    assert len((out / "metrics.jsonl").read_text().splitlines()) >= 3


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('skip_bad = "no"', "skip_bad must be true or false, got 'no'"),
        ('skip-bad = "false"', "skip_bad must be true or false, got 'false'"),
        ('lr = "0.1"', "lr must be a number, got '0.1'"),
        ("plugin = 3", "plugin must be a table of options, got 3"),
        ("out = 5", "out must be a string, got 5"),
        ("batch_size = 2.5", "batch_size must be an int, got 2.5"),
        ("kmax = true", "kmax must be a number, got True"),
    ],
)
def test_config_file_values_are_type_checked(tmp_path, line, message):
    config = tmp_path / "run.toml"
    config.write_text(f'modality = "tokens"\nepochs = 1\n{line}\n')
    result = invoke("train", "--config", str(config), "--out", str(tmp_path / "run"), "-q")
    assert one_line_error(result) == f"error: config file {config}: {message}"


def test_path_values_are_accepted_where_a_string_is_expected(tmp_path):
    _, config = resolve_config({}, {**SMALL, "out": tmp_path / "run"})
    assert config.out == str(tmp_path / "run")
    json.dumps(config.to_dict())  # still what a checkpoint records
