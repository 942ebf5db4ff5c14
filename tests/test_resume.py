"""An early-stopped training resumed from saved state stops at the same epoch as an uninterrupted one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _helpers import TIMER_COLUMNS, csv_rows, json_lines
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.loop import FitResult, fit
from altametris.sara.plugins.history import History

# A validation loss that improves, stalls, improves a little, then stalls for good.
VAL_LOSS = [1.0, 0.8, 0.7, 0.72, 0.71, 0.69, 0.695, 0.70, 0.71, 0.705, 0.70, 0.69, 0.68]
EPOCHS = len(VAL_LOSS)


def config(folder: Path, *, append: bool) -> dict[str, object]:
    return {
        "callbacks": [
            "timer",
            {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 3, "min_delta": 0.005}},
            {"name": "checkpoint", "params": {"dirpath": str(folder / "ckpt"), "save_top_k": 2}},
            {"name": "csv_logger", "params": {"path": str(folder / "metrics.csv"), "append": append}},
            "history",
        ]
    }


def train(manager: CallbackManager, *, epochs: int, start_epoch: int = 0) -> FitResult:
    epoch_of_batch: list[int] = []

    def batches(epoch: int) -> list[int]:
        epoch_of_batch.append(epoch)
        return [epoch]

    def save(path: str) -> None:
        Path(path).write_text(str(epoch_of_batch[-1]))

    return fit(
        manager,
        epochs=epochs,
        start_epoch=start_epoch,
        data=batches,
        train_step=lambda epoch: {"loss": 1.0 / (epoch + 1)},
        validate=lambda: {"val_loss": VAL_LOSS[epoch_of_batch[-1]]},
        save_checkpoint=save,
    )


def history_of(manager: CallbackManager) -> History:
    (history,) = (callback for callback in manager.callbacks if isinstance(callback, History))
    return history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[FitResult, list[int], list[str]]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    manager = CallbackManager.from_config(config(folder, append=False))
    result = train(manager, epochs=EPOCHS)
    return result, history_of(manager).epochs, sorted(path.name for path in (folder / "ckpt").iterdir())


def test_the_uninterrupted_run_stops_early(uninterrupted: tuple[FitResult, list[int], list[str]]) -> None:
    result, _, _ = uninterrupted
    assert result.stopped
    assert result.control.stop_source == "early_stopping"
    assert result.last_epoch == 8  # best 0.69 at epoch 5, then three epochs without a gain of 0.005


@pytest.mark.parametrize("interrupted_after", range(8))  # every epoch before the stop, mid-stall ones included
def test_a_resumed_run_stops_at_the_same_epoch(
    interrupted_after: int, tmp_path: Path, uninterrupted: tuple[FitResult, list[int], list[str]]
) -> None:
    expected, expected_epochs, expected_files = uninterrupted

    first = CallbackManager.from_config(config(tmp_path, append=False))
    train(first, epochs=interrupted_after + 1)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(first.state_dict()))

    resumed = CallbackManager.from_config(config(tmp_path, append=True))  # new callbacks, as in a new process
    resumed.load_state_dict(json.loads(state_file.read_text()))
    result = train(resumed, epochs=EPOCHS, start_epoch=interrupted_after + 1)

    assert result.last_epoch == expected.last_epoch
    assert result.stop_reason == expected.stop_reason
    assert history_of(resumed).epochs == expected_epochs
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == expected_files
    with open(tmp_path / "metrics.csv", newline="") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == expected_epochs


# -- issue 13: resume without changing the config ---------------------------------------------------------------------


def same_config(folder: Path) -> dict[str, object]:
    """One config for the first run and the resumed one: no ``append``."""
    return {
        "callbacks": [
            "timer",
            {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 3, "min_delta": 0.005}},
            {"name": "checkpoint", "params": {"dirpath": "ckpt", "save_top_k": 2, "filename": "e{epoch:02d}.json"}},
            {"name": "csv_logger", "params": {"path": "metrics.csv"}},
            {"name": "jsonl_logger", "params": {"path": "metrics.jsonl", "per_batch": True}},
            "history",
        ]
    }


class Interrupted(Exception):
    """A crash in the middle of an epoch."""


def train_saving_state(folder: Path, *, crash_in: int | None = None, resume_from: Path | None = None) -> FitResult:
    """Train with the state saved inside every checkpoint file; crash in an epoch's second batch, or resume."""
    manager = CallbackManager.from_config(same_config(folder))
    start = 0
    if resume_from is not None:
        saved = json.loads(resume_from.read_text())
        manager.load_state_dict(saved["callbacks"])
        start = saved["epoch"] + 1
    now = [start]

    def batches(epoch: int) -> list[int]:
        now[0] = epoch
        return [epoch, epoch]

    batches_seen: list[int] = []

    def step(epoch: int) -> dict[str, float]:
        batches_seen.append(epoch)
        if epoch == crash_in and batches_seen.count(epoch) == 2:  # the epoch's second batch
            raise Interrupted
        return {"loss": 1.0 / (epoch + 1)}

    def save(path: str) -> None:
        Path(path).write_text(json.dumps({"epoch": now[0], "callbacks": manager.state_dict()}))

    return fit(
        manager,
        epochs=EPOCHS,
        start_epoch=start,
        data=batches,
        train_step=step,
        validate=lambda: {"val_loss": VAL_LOSS[now[0]]},
        save_checkpoint=save,
        output_dir=folder,
    )


@pytest.mark.parametrize("crash_in", [3, 4, 6, 8])
def test_issue13_repro2_a_resume_with_the_same_config_keeps_the_rows_up_to_the_saved_point(
    crash_in: int, tmp_path: Path
) -> None:
    expected = train_saving_state(tmp_path / "uninterrupted")
    folder = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_saving_state(folder, crash_in=crash_in)
    latest = max((folder / "ckpt").glob("e*.json"))
    result = train_saving_state(folder, resume_from=latest)

    assert (result.last_epoch, result.stop_reason) == (expected.last_epoch, expected.stop_reason)
    full = tmp_path / "uninterrupted"
    assert csv_rows(folder / "metrics.csv", drop=TIMER_COLUMNS) == csv_rows(full / "metrics.csv", drop=TIMER_COLUMNS)
    assert json_lines(folder / "metrics.jsonl", drop=TIMER_COLUMNS) == json_lines(
        full / "metrics.jsonl", drop=TIMER_COLUMNS
    )
    assert sorted(p.name for p in (folder / "ckpt").iterdir()) == sorted(
        p.name for p in (tmp_path / "uninterrupted/ckpt").iterdir()
    )


def test_a_fresh_run_without_state_still_starts_clean(tmp_path: Path) -> None:
    train_saving_state(tmp_path)
    train_saving_state(tmp_path)
    with open(tmp_path / "metrics.csv", newline="") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == list(range(9))
