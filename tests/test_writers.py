"""Where the built-in writers may write: inside the folder they were given, unless given an absolute path on purpose."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Callable

import pytest
from altametris.sara.core import __version__
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.checkpoint import Checkpoint
from altametris.sara.plugins.csv_logger import CSVLogger
from altametris.sara.plugins.jsonl_logger import JSONLLogger

if TYPE_CHECKING:
    from pathlib import Path

WRITERS: dict[str, tuple[Callable[..., BaseCallback], str]] = {
    "csv_logger": (CSVLogger, "path"),
    "jsonl_logger": (JSONLLogger, "path"),
    "checkpoint": (Checkpoint, "dirpath"),
}


def _save(path: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump({}, file)


def _train(callback: BaseCallback, output_dir: Path | None = None) -> None:
    fit(
        CallbackManager([callback]),
        epochs=1,
        batches_per_epoch=1,
        train_step=lambda batch: {"loss": 1.0},
        validate=lambda: {"val_loss": 0.5},
        save_checkpoint=_save,
        output_dir=output_dir,
    )


@pytest.mark.parametrize("escape", ["../escape.csv", "logs/../../escape.csv", "..", os.path.join("a", "..", "..", "b")])
@pytest.mark.parametrize("plugin", list(WRITERS))
def test_a_relative_path_that_leaves_the_run_folder_is_refused_when_the_callback_is_built(
    plugin: str, escape: str
) -> None:
    factory, parameter = WRITERS[plugin]
    with pytest.raises(PluginParameterError, match="a relative path that leaves the folder it resolves against") as e:
        factory(**{parameter: escape})
    assert (e.value.plugin, e.value.parameter) == (plugin, parameter)


@pytest.mark.parametrize("plugin", list(WRITERS))
def test_sara_callbacks_check_reports_the_escape_before_any_training(plugin: str) -> None:
    _, parameter = WRITERS[plugin]
    report = check_config({"callbacks": [{"name": plugin, "params": {parameter: "../escape.csv"}}]})
    (problem,) = report.problems
    assert str(problem).startswith(
        f"callbacks[0].params.{parameter}: plugin {plugin!r} (sara-callbacks=={__version__}): "
        f"parameter {parameter!r} is '../escape.csv', a relative"
    )


@pytest.mark.parametrize("plugin", list(WRITERS))
def test_a_relative_path_that_stays_inside_is_written_inside(plugin: str, tmp_path: Path) -> None:
    factory, parameter = WRITERS[plugin]
    run = tmp_path / "run"
    _train(factory(**{parameter: os.path.join("logs", "..", "out")}), run)
    assert (run / "out").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("plugin", list(WRITERS))
def test_an_absolute_path_is_taken_as_given_even_outside_the_run_folder(plugin: str, tmp_path: Path) -> None:
    factory, parameter = WRITERS[plugin]
    elsewhere = tmp_path / "elsewhere" / "out"
    _train(factory(**{parameter: str(elsewhere)}), tmp_path / "run")
    assert elsewhere.exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
@pytest.mark.parametrize("plugin", list(WRITERS))
def test_a_symbolic_link_inside_the_run_folder_that_leads_outside_is_not_followed(plugin: str, tmp_path: Path) -> None:
    factory, parameter = WRITERS[plugin]
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    try:
        (run / "link").symlink_to(outside, target_is_directory=True)
    except OSError:  # pragma: no cover - symbolic links not permitted here
        pytest.skip("cannot create symbolic links")
    callback = factory(**{parameter: os.path.join("link", "out")})
    with pytest.raises(TrainingError, match=r"leads to .*outside .* \(through a symbolic link\)") as caught:
        _train(callback, run)
    assert caught.value.__cause__ is not None
    assert list(outside.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_run_folder_that_is_itself_a_symbolic_link_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    try:
        (tmp_path / "run").symlink_to(real, target_is_directory=True)
    except OSError:  # pragma: no cover - symbolic links not permitted here
        pytest.skip("cannot create symbolic links")
    _train(CSVLogger(path="metrics.csv"), tmp_path / "run")
    assert (real / "metrics.csv").read_text(encoding="utf-8").startswith("epoch,")


def test_a_path_with_a_nul_character_is_refused_when_built() -> None:
    with pytest.raises(PluginParameterError, match="expects a file system path"):
        CSVLogger(path="metrics\0.csv")


# -- copies: pickle, deepcopy, a spawned process ------------------------------------------------------------------


def _spawned_child(payload: bytes, epoch: int) -> None:
    """Runs in a process started with 'spawn': the manager, pickled while its files were open, reopens them."""
    import pickle

    manager = pickle.loads(payload)
    manager.on_epoch_start(epoch)
    manager.on_epoch_end(epoch, {"loss": 0.25})
    manager.on_train_end()


def test_a_manager_with_file_loggers_pickles_deep_copies_and_crosses_a_spawn_boundary(tmp_path: Path) -> None:
    import copy
    import multiprocessing
    import pickle

    from altametris.sara.core import CallbackManager

    config = {"callbacks": [{"name": "csv_logger", "params": {"path": "m.csv"}}, {"name": "jsonl_logger"}]}
    manager = CallbackManager.from_config(config)
    pickle.loads(pickle.dumps(manager))  # before the training: no file yet
    manager.on_train_start(output_dir=tmp_path)
    manager.on_epoch_start(0)
    manager.on_epoch_end(0, {"loss": 0.5})
    copy.deepcopy(manager)  # while the files are open
    payload = pickle.dumps(manager)  # as a spawned process receives it, while the files are open
    manager.on_train_end()  # the parent closes its files; the child continues the run in the same files
    child = multiprocessing.get_context("spawn").Process(target=_spawned_child, args=(payload, 1))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    rows = (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()
    assert rows == ["epoch,loss", "0,0.5", "1,0.25"]
    lines = (tmp_path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [line.count('"epoch"') for line in lines] == [1, 1]


@pytest.mark.parametrize("plugin", ["csv_logger", "jsonl_logger"])
def test_under_warn_a_logger_that_could_not_open_its_file_says_so_with_the_cause(
    plugin: str, read_only_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 25, item 7: it said "on_train_start was not called", which was false."""
    folder = read_only_folder
    logger = {"csv_logger": CSVLogger, "jsonl_logger": JSONLLogger}[plugin](path="m.out")
    manager = CallbackManager()
    manager.add_callback(logger, on_error="warn")
    manager.on_train_start(output_dir=folder)
    manager.on_epoch_end(0, {"loss": 0.5})
    first, then = (record.getMessage() for record in caplog.records[:2])
    assert f"cannot open {folder / 'm.out'} for writing" in first
    assert "Read-only file system" in first
    assert "on_train_start was not called" not in then
    assert f"on_train_start failed to open {folder / 'm.out'}" in then
    assert "Read-only file system" in then
