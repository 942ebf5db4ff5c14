"""A full disk, for real: the loggers write on a 64 KB tmpfs until ENOSPC, and every file ends at its last whole record.

No mock: the disk fills up (``small_disk`` mounts a real tmpfs; the tests skip, saying why, where mounting is not
allowed). On tmpfs, a write that crosses into a page the file system cannot give comes back short, then fails with
ENOSPC: the torn record that a buffered ``write`` + ``flush`` left behind (issue 25, item 1).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.csv_logger import CSVLogger
from altametris.sara.plugins.jsonl_logger import JSONLLogger

if TYPE_CHECKING:
    from pathlib import Path

LOGGERS = {"csv_logger": CSVLogger, "jsonl_logger": JSONLLogger}


def whole_records(path: Path) -> int:
    """How many records ``path`` holds, asserting that it ends at a whole one (a CSV row as wide as the header)."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path.name} ends with a partial record: {text[-80:]!r}"
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        for row in rows[1:]:
            assert len(row) == len(rows[0]), f"{path.name}: a row of {len(row)} cells under {len(rows[0])}: {row}"
        return max(0, len(rows) - 1)
    return len([json.loads(line) for line in text.splitlines()])


def fill(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    with open(path, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as error:
            full = error.errno == errno.ENOSPC
    assert full, "the disk must end full"


def metrics(batch: int, width: int) -> dict[str, Any]:
    """A row whose size varies with ``width``, so that the disk fills at a different place of a record each time."""
    return {"loss": 1.0 / (batch + 1), "tag_x": "x" * (width + batch % 7)}


@pytest.mark.parametrize("plugin", sorted(LOGGERS))
@pytest.mark.parametrize("width", [0, 13, 101, 517, 1999])
def test_each_row_reaches_a_full_disk_whole_or_not_at_all_and_the_error_names_the_file_and_the_cause(
    small_disk: Path, plugin: str, width: int
) -> None:
    logger = LOGGERS[plugin](path=small_disk / f"m.{plugin[:-7]}", per_batch=True)
    logger.on_train_start()
    written, errors, batch = 0, [], 0
    while len(errors) < 20:  # every write after the disk is full fails: each one must cut back its partial row
        logger.on_epoch_start(0)
        try:
            logger.on_batch_end(batch, metrics(batch, width))
        except TrainingError as error:
            errors.append(error)
        else:
            assert not errors, "a row was written after the disk was full"
            written += 1
        batch += 1
        if errors or batch % 97 == 0:
            assert whole_records(logger.file_path) == written  # after every failed write, and now and then
    assert written > 0
    for error in errors:
        assert str(logger.file_path) in str(error)
        assert "No space left on device" in str(error)
        assert isinstance(error.__cause__, OSError)
        assert error.__cause__.errno == errno.ENOSPC
        assert error.callback is logger
    logger.on_train_end()
    assert whole_records(logger.file_path) == written


@pytest.mark.parametrize("plugin", sorted(LOGGERS))
def test_once_space_is_freed_the_logger_goes_on_with_whole_rows(small_disk: Path, plugin: str) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 16384)
    logger = LOGGERS[plugin](path=small_disk / f"m.{plugin[:-7]}", per_batch=True)
    logger.on_train_start()
    logger.on_epoch_start(0)
    batch, refused = 0, None
    while refused is None:
        try:
            logger.on_batch_end(batch, metrics(batch, 300))
            batch += 1
        except TrainingError as error:
            refused = error
    assert "No space left on device" in str(refused)
    filler.unlink()
    for more in range(batch, batch + 5):
        logger.on_batch_end(more, metrics(more, 300))
    logger.on_train_end()
    assert whole_records(logger.file_path) == batch + 5


def test_a_new_csv_column_on_a_full_disk_leaves_the_file_and_its_header_as_they_were(small_disk: Path) -> None:
    logger = CSVLogger(path=small_disk / "m.csv", per_batch=True)
    logger.on_train_start()
    logger.on_epoch_start(0)
    for batch in range(3):
        logger.on_batch_end(batch, {"loss": 0.5})
    fill(small_disk / "filler")  # no room left for a copy of the file
    before = logger.file_path.read_bytes()
    for batch in range(3, 8):
        with pytest.raises(TrainingError) as refused:
            logger.on_batch_end(batch, {"loss": 0.5, "new": "y" * 4000})  # a new column: the file is rewritten
        assert "No space left on device" in str(refused.value)
        assert str(logger.file_path) in str(refused.value)
    assert logger.file_path.read_bytes() == before
    assert logger.columns == ["epoch", "batch", "loss"]
    assert [path.name for path in small_disk.iterdir() if path.name.endswith(".tmp")] == []
    logger.on_train_end()


@pytest.mark.parametrize("policy", ["raise", "warn", "disable"])
def test_fit_on_a_full_disk_leaves_every_file_at_its_last_whole_record_under_every_policy(
    small_disk: Path, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's reproduction: both loggers per batch, fit until the disk is full, under each error policy."""
    loggers = [CSVLogger(path="m.csv", per_batch=True), JSONLLogger(path="m.jsonl", per_batch=True)]
    manager = CallbackManager()
    for logger in loggers:
        manager.add_callback(logger, on_error=policy)

    def run() -> None:
        fit(
            manager,
            epochs=40,
            data=lambda epoch: range(15),
            train_step=lambda batch: {f"metric_with_a_long_name_{index}": batch / 7 for index in range(8)},
            output_dir=small_disk,
        )

    with caplog.at_level(logging.WARNING):
        if policy == "raise":
            with pytest.raises(TrainingError) as raised:
                run()
            text = f"{raised.value} {raised.value.__cause__}"
            assert "No space left on device" in text
            assert any(str(small_disk / name) in text for name in ("m.csv", "m.jsonl"))
        else:
            run()
            assert "No space left on device" in caplog.text
            assert str(small_disk) in caplog.text
    counts = {path.name: whole_records(path) for path in sorted(small_disk.glob("m.*"))}
    assert set(counts) == {"m.csv", "m.jsonl"}
    assert 0 < min(counts.values()) < 40 * 16  # the disk filled before the end: rows were refused, none torn
    assert all(logger.closed for logger in loggers)
    assert sorted(path.name for path in small_disk.iterdir()) == ["m.csv", "m.jsonl"]  # no temporary, no lock left
