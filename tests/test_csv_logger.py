"""csv_logger: one row per epoch (optionally per batch), every metric, a parseable file at every instant."""

from __future__ import annotations

import csv
import os
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import csv_rows
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.testing import check_callback
from altametris.sara.plugins.csv_logger import CSVLogger

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from altametris.sara.core.testing import Recording


def header(path: Path) -> list[str]:
    with open(path, newline="") as file:
        return next(csv.reader(file))


def test_one_row_per_epoch_with_every_metric_at_full_precision(tmp_path: Path) -> None:
    logger = CSVLogger(path=tmp_path / "m.csv")
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1 / 3, "accuracy": 0.5})
    logger.on_epoch_end(1, {"loss": 0.25, "accuracy": 0.75})
    logger.on_train_end()
    assert header(tmp_path / "m.csv") == ["epoch", "loss", "accuracy"]
    assert csv_rows(tmp_path / "m.csv") == [
        {"epoch": "0", "loss": repr(1 / 3), "accuracy": "0.5"},
        {"epoch": "1", "loss": "0.25", "accuracy": "0.75"},
    ]
    assert float(csv_rows(tmp_path / "m.csv")[0]["loss"]) == 1 / 3


def test_per_batch_adds_batch_rows_and_epoch_rows_have_an_empty_batch_cell(tmp_path: Path) -> None:
    manager = CallbackManager([CSVLogger(path=tmp_path / "m.csv", per_batch=True)])
    manager.on_train_start()
    manager.on_epoch_start(0)
    manager.on_batch_end(0, {"loss": 2.0})
    manager.on_batch_end(1, {"loss": 1.0})
    manager.on_epoch_end(0, {"loss": 1.5})
    manager.on_train_end()
    assert [(row["epoch"], row["batch"], row["loss"]) for row in csv_rows(tmp_path / "m.csv")] == [
        ("0", "0", "2.0"),
        ("0", "1", "1.0"),
        ("0", "", "1.5"),
    ]


def test_a_new_metric_adds_a_column_to_the_whole_file_through_a_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    logger = CSVLogger(path=path)
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1.0})
    inode = os.stat(path).st_ino
    logger.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})
    logger.on_epoch_end(2, {"val_loss": 0.6})
    logger.on_train_end()
    assert os.stat(path).st_ino != inode  # replaced, not rewritten in place
    assert header(path) == ["epoch", "loss", "val_loss"]
    assert csv_rows(path) == [
        {"epoch": "0", "loss": "1.0", "val_loss": ""},
        {"epoch": "1", "loss": "0.5", "val_loss": "0.7"},
        {"epoch": "2", "loss": "", "val_loss": "0.6"},
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no temporary file left behind


def test_every_row_is_on_disk_as_soon_as_it_is_written(tmp_path: Path) -> None:
    logger = CSVLogger(path=tmp_path / "m.csv")
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1.0})
    assert csv_rows(tmp_path / "m.csv") == [{"epoch": "0", "loss": "1.0"}]
    logger.on_train_end()


def test_fsync_syncs_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    logger = CSVLogger(path=tmp_path / "m.csv", fsync=True)
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_train_end()
    assert len(synced) == 2  # the header and the row


def test_without_append_an_existing_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("epoch,old\n0,1\n")
    logger = CSVLogger(path=path)
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_train_end()
    assert path.read_text() == "epoch,loss\n0,1.0\n"


def test_append_continues_a_resumed_run_and_cuts_a_row_left_half_written(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.2")  # killed while writing epoch 2
    logger = CSVLogger(path=path, append=True)
    logger.on_train_start()
    logger.on_epoch_end(2, {"loss": 0.25})
    logger.on_epoch_end(3, {"loss": 0.125, "val_loss": 0.3})
    logger.on_train_end()
    assert csv_rows(path) == [
        {"epoch": "0", "loss": "1.0", "val_loss": ""},
        {"epoch": "1", "loss": "0.5", "val_loss": ""},
        {"epoch": "2", "loss": "0.25", "val_loss": ""},
        {"epoch": "3", "loss": "0.125", "val_loss": "0.3"},
    ]


def test_append_to_a_missing_file_starts_one(tmp_path: Path) -> None:
    logger = CSVLogger(path=tmp_path / "m.csv", append=True)
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_train_end()
    assert csv_rows(tmp_path / "m.csv") == [{"epoch": "0", "loss": "1.0"}]


def test_a_relative_path_resolves_in_the_output_dir_and_its_folder_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    logger = CSVLogger(path="logs/m.csv")
    logger.on_train_start(output_dir=tmp_path / "run")
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_train_end()
    assert logger.file_path == tmp_path / "run" / "logs" / "m.csv"
    assert logger.file_path.is_file()
    assert not (tmp_path / "logs").exists()


def test_building_it_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    CSVLogger(path="sub/m.csv")
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_closed_on_train_end_and_on_exception(tmp_path: Path) -> None:
    logger = CSVLogger(path=tmp_path / "m.csv")
    assert logger.closed
    logger.on_train_start()
    assert not logger.closed
    logger.on_exception(RuntimeError("boom"))
    assert logger.closed
    logger.on_exception(RuntimeError("twice is harmless"))


def test_rows_before_on_train_start_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="on_train_start was not called"):
        CSVLogger(path=tmp_path / "m.csv").on_epoch_end(0, {"loss": 1.0})


def test_a_metric_named_epoch_cannot_hide_the_epoch(tmp_path: Path) -> None:
    logger = CSVLogger(path=tmp_path / "m.csv")
    logger.on_train_start()
    logger.on_epoch_end(4, {"epoch": 99.0, "loss": 1.0})
    logger.on_train_end()
    assert csv_rows(tmp_path / "m.csv") == [{"epoch": "4", "loss": "1.0"}]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"path": 3}, "path"),
        ({"path": ""}, "path"),
        ({"per_batch": "yes"}, "per_batch"),
        ({"append": 1}, "append"),
        ({"fsync": None}, "fsync"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        CSVLogger(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("csv_logger", parameter)
    assert repr(params[parameter]) in str(caught.value)


# -- through a simulated training (the testing kit) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fail_at", [("on_batch_end", 1, 2), ("on_validation_end", 1), ("on_epoch_end", 2), "on_train_end"]
)
def test_a_failure_anywhere_closes_the_file_with_every_finished_epoch_in_it(
    sara_simulate: Callable[..., Recording], tmp_path: Path, fail_at: Any
) -> None:
    logger = CSVLogger(path="metrics.csv")
    recording = sara_simulate(logger, epochs=3, batches=3, fail_at=fail_at)
    assert recording.failed
    assert recording.hooks[-1] == "on_exception"
    assert logger.closed
    finished = len(recording.of("on_epoch_end"))
    assert [row["epoch"] for row in csv_rows(tmp_path / "metrics.csv")] == [str(epoch) for epoch in range(finished)]


def test_per_batch_rows_follow_the_simulated_training(sara_simulate: Callable[..., Recording], tmp_path: Path) -> None:
    sara_simulate(CSVLogger(path="metrics.csv", per_batch=True), epochs=2, batches=2, validate=False)
    assert [(row["epoch"], row["batch"]) for row in csv_rows(tmp_path / "metrics.csv")] == [
        ("0", "0"),
        ("0", "1"),
        ("0", ""),
        ("1", "0"),
        ("1", "1"),
        ("1", ""),
    ]


def test_it_fits_the_callback_contract() -> None:
    check_callback(CSVLogger, plugin_name="csv_logger", params={"path": "metrics.csv"})
