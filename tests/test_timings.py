"""Timings: opt-in, per callback and hook, as data, a logged table, a JSON file, and a warning about slow callbacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config
from altametris.sara.core.loop import fit
from altametris.sara.core.profiling import LOGGER_NAME, Timings

if TYPE_CHECKING:
    from pathlib import Path

SLEEP = 0.02


class Sleeper(BaseCallback):
    """Sleeps a known time at every batch end."""

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        time.sleep(SLEEP)


class Quick(BaseCallback):
    def __init__(self) -> None:
        self.batches = 0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.batches += 1

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


def _step(batch: object) -> dict[str, float]:
    return {"loss": 1.0}


def _row(timings: Timings | None, callback: str, hook: str) -> Any:
    assert timings is not None
    found = [row for row in timings.rows if row.callback == callback and row.hook == hook]
    assert len(found) == 1, timings.rows
    return found[0]


def test_timing_is_off_by_default_and_costs_nothing_then(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SARA_PROFILE", raising=False)
    manager = CallbackManager([Quick()])
    assert manager.timings is None

    class Caller(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            self.caller = sys._getframe(1).f_code.co_filename

    caller = Caller()
    manager.add_callback(caller)
    manager.on_batch_end(0, {})
    assert caller.caller == "<sara CallbackManager.on_batch_end>"  # the manager's method calls it: no wrapper between


def test_the_environment_variable_turns_timing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SARA_PROFILE", "1")
    manager = CallbackManager([Quick()])
    manager.on_train_start()
    manager.on_batch_end(0, {})
    timings = manager.timings
    assert timings is not None
    assert [(row.callback, row.hook, row.calls) for row in timings.rows] == [("Quick", "on_batch_end", 1)]
    assert CallbackManager([Quick()], profile=False).timings is None


def test_the_figures_match_a_callback_that_sleeps_a_known_time() -> None:
    manager = CallbackManager([Quick(), Sleeper()], profile=True)
    fit(manager, epochs=2, train_step=_step, data=range(3))
    row = _row(manager.timings, "Sleeper", "on_batch_end")
    assert row.calls == 6
    assert SLEEP <= row.mean < 10 * SLEEP  # generous above: a loaded machine sleeps longer, never shorter
    assert row.max >= row.mean
    assert row.total == pytest.approx(row.mean * 6)
    timings = manager.timings
    assert timings is not None
    assert timings.wall >= 6 * SLEEP
    assert 0.5 < row.share <= 1.0  # the sleeps are most of this training
    assert _row(timings, "Quick", "on_batch_end").calls == 6
    assert _row(timings, "Quick", "on_batch_end").total < row.total


def test_profile_turns_timing_on_and_off_on_a_live_manager() -> None:
    manager = CallbackManager([Quick()])
    manager.profile()
    manager.on_batch_end(0, {})
    assert _row(manager.timings, "Quick", "on_batch_end").calls == 1
    manager.profile(False)
    assert manager.timings is None


def test_a_triggered_callback_counts_the_calls_it_received() -> None:
    quick = Quick()
    manager = CallbackManager(profile=True)
    manager.add_callback(quick, when="2ba")
    manager.on_train_start()
    for epoch in range(2):
        manager.on_epoch_start(epoch)
        for batch in range(5):
            manager.on_batch_end(batch, {})
        manager.on_epoch_end(epoch, {})
    assert quick.batches == 5
    assert _row(manager.timings, "Quick", "on_batch_end").calls == 5


def test_two_instances_of_one_class_are_told_apart() -> None:
    manager = CallbackManager([Quick(), Quick()], profile=True)
    manager.on_batch_end(0, {})
    assert {row.callback for row in manager.timings.rows} == {"Quick", "Quick#2"}  # type: ignore[union-attr]


def test_the_table_is_logged_and_the_json_written_at_the_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manager = CallbackManager([Sleeper()], profile=True)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        fit(manager, epochs=1, train_step=_step, data=range(2), output_dir=tmp_path)
    tables = [record.getMessage() for record in caplog.records if "callback timings (rank 0)" in record.getMessage()]
    assert len(tables) == 1
    assert "Sleeper" in tables[0]
    assert "on_batch_end" in tables[0]
    saved = json.loads((tmp_path / "timings.json").read_text())
    assert saved["rank"] == 0
    (hook,) = [hook for hook in saved["hooks"] if hook["hook"] == "on_batch_end"]
    assert hook["callback"] == "Sleeper"
    assert hook["calls"] == 2
    assert hook["mean"] >= SLEEP
    assert [path.name for path in tmp_path.iterdir()] == ["timings.json"]  # no temporary file left


def test_another_rank_writes_its_own_file_and_logs_no_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    manager = CallbackManager([Quick()], profile=True)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        fit(manager, epochs=1, train_step=_step, data=range(2), output_dir=tmp_path, handle_sigterm=False)
    assert not [record for record in caplog.records if "callback timings" in record.getMessage()]
    saved = json.loads((tmp_path / "timings.rank1.json").read_text())
    assert saved["rank"] == 1
    assert not (tmp_path / "timings.json").exists()


def test_a_callback_that_takes_most_of_the_batch_time_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    manager = CallbackManager([Quick(), Sleeper()], profile=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        fit(manager, epochs=3, train_step=_step, data=range(4))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("callback 'Sleeper' takes ")
    assert "of the batch time: on_batch_end takes " in warnings[0]


def test_a_failure_under_timing_still_names_its_callback(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(BaseCallback):
        on_error = "warn"

        def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
            raise ValueError("no loss")

    manager = CallbackManager([Broken(), Quick()], profile=True)
    with caplog.at_level(logging.WARNING):
        manager.on_batch_end(3, {})
    assert "callback 'Broken' failed in on_batch_end (batch 3)" in caplog.text
    assert _row(manager.timings, "Quick", "on_batch_end").calls == 1


def test_a_config_turns_timing_on_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text('profile = true\ncallbacks = ["timer"]\n')
    assert CallbackManager.from_config(config).timings is not None
    config.write_text('profile = "yes"\ncallbacks = ["timer"]\n')
    problems = [str(problem) for problem in check_config(config).problems]
    assert len(problems) == 1
    assert problems[0].endswith("train.toml: profile: expected true or false, got string 'yes'")


def test_the_demo_prints_the_table_and_writes_the_json_with_profile(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "altametris.sara.core",
            "demo",
            "--epochs",
            "1",
            "--output",
            str(tmp_path / "run"),
            "--profile",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "callback timings (rank 0)" in result.stdout
    saved = json.loads((tmp_path / "run" / "timings.json").read_text())
    assert {hook["callback"] for hook in saved["hooks"]} >= {
        "progress_bar",
        "csv_logger",
        "checkpoint",
    }  # the config names


def test_rows_are_named_by_the_configs_plugin_names_numbered_when_an_item_repeats() -> None:
    manager = CallbackManager.from_config(
        {
            "profile": True,
            "callbacks": [
                {"name": "early_stopping", "params": {"monitor": "loss", "patience": 5}},
                {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 5}, "state_key": "second"},
                "nan_guard",
            ],
        }
    )
    fit(
        manager, epochs=1, batches_per_epoch=2, train_step=lambda batch: {"loss": 1.0}, validate=lambda: {"val_loss": 1}
    )
    assert {row.callback for row in manager.timings.rows} == {"early_stopping", "early_stopping#2", "nan_guard"}  # type: ignore[union-attr]


def test_without_logging_set_up_the_table_is_printed_on_stderr() -> None:
    code = (
        "from altametris.sara.core import CallbackManager, fit\n"
        "manager = CallbackManager.from_config({'profile': True, 'callbacks': ['nan_guard']})\n"
        "fit(manager, epochs=1, batches_per_epoch=2, train_step=lambda batch: {'loss': 1.0})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "callback timings (rank 0)" in result.stderr
    assert "nan_guard" in result.stderr
    assert result.stdout == ""
