"""``sara-callbacks demo``: a small training with callbacks from a config, written into one run folder."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _helpers import csv_rows
from altametris.sara.core.cli.demo import embedded_config, run_demo
from altametris.sara.core.exceptions import ConfigError, PluginError

FAST = "[demo]\npause_seconds = 0\n"


@pytest.mark.slow
def test_the_demo_command_exits_0_and_its_run_folder_holds_a_csv_that_parses(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--output", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = csv_rows(run / "metrics.csv")
    assert rows
    assert [int(row["epoch"]) for row in rows] == list(range(len(rows)))
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])  # it learns
    assert "epoch 0 (1/40) loss=" in done.stdout  # the progress bar, forced on
    assert "stopped early by early_stopping: 'val_loss' did not improve" in done.stdout  # early stopping ends it
    assert len(list((run / "checkpoints").iterdir())) == 2
    assert f"Run folder: {run.relative_to(tmp_path)}" in done.stdout
    assert "metrics.csv" in done.stdout
    assert done.stderr == ""


def test_run_demo_writes_everything_into_the_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "fast.toml"
    config.write_text(
        textwrap.dedent(
            """
            callbacks = [
                "metrics_logger",
                { name = "csv_logger", params = { path = "logs/metrics.csv" } },
                { name = "jsonl_logger", params = { path = "metrics.jsonl" } },
                { name = "checkpoint", params = { dirpath = "ckpt", filename = "epoch{epoch:03d}.json" } },
                { name = "progress_bar", enabled = false },
            ]
            [demo]
            pause_seconds = 0
            """
        )
    )
    stream = io.StringIO()
    folder = run_demo(config=config, epochs=3, output="out", stream=stream)
    assert folder.resolve() == (tmp_path / "out").resolve()
    written = {str(path.relative_to(folder).as_posix()) for path in folder.rglob("*") if path.is_file()}
    checkpoints = {name for name in written if name.startswith("ckpt/")}
    assert len(checkpoints) == 1
    assert written - checkpoints == {"logs/metrics.csv", "metrics.jsonl", "state.json", "train.log"}
    assert sorted(tmp_path.iterdir()) == [config, tmp_path / "out"]  # nothing outside the run folder
    assert len(csv_rows(folder / "logs" / "metrics.csv")) == 3
    weights = json.loads(next((folder / "ckpt").iterdir()).read_text())
    assert set(weights) == {"weights", "bias", "callbacks"}  # the callbacks' state, saved with the checkpoint
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] == 2
    assert any(key.startswith("Checkpoint") for key in state["callbacks"])
    assert "epoch 2: loss=" in (folder / "train.log").read_text()
    output = stream.getvalue()
    assert "Callbacks from" in output
    assert "metrics_logger, csv_logger, jsonl_logger, checkpoint" in output
    assert "Training ended after epoch 2 (as planned)" in output
    assert "Run folder: out" in output


def test_without_output_the_run_folder_is_a_timestamp_under_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text('callbacks = ["history"]\n' + FAST)
    first = run_demo(config=config, epochs=1, stream=io.StringIO())
    second = run_demo(config=config, epochs=1, stream=io.StringIO())
    assert first.parent == second.parent == Path("runs")
    assert first != second
    assert (first / "state.json").is_file()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("callbacks = []\n[demo]\nepochs = '3'\n", r"demo\.epochs: expected a whole number >= 1, got '3'"),
        ("callbacks = []\n[demo]\nlearning_rate = 0\n", r"demo\.learning_rate: expected a number > 0"),
        ("callbacks = []\n[demo]\nepoch = 3\n", r"demo\.epoch: unknown setting; the demo's settings are: epochs"),
        ("callbacks = []\ndemo = 3\n", r"demo: expected a table"),
    ],
)
def test_bad_demo_settings_are_config_errors_naming_the_file_and_the_key(
    text: str, message: str, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        run_demo(config=config, output=tmp_path / "out", stream=io.StringIO())
    assert str(config) in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_an_unknown_callback_in_the_config_is_a_plugin_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('callbacks = ["csv_loger"]\n')
    with pytest.raises(PluginError, match="csv_logger"):
        run_demo(config=config, output=tmp_path / "out", stream=io.StringIO())


# -- starting a config of one's own ----------------------------------------------------------------------------------


def test_print_config_writes_the_embedded_config_which_check_accepts(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--print-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == embedded_config()
    assert "[[callbacks]]" in printed.stdout
    assert not list(tmp_path.iterdir())  # it only prints: no run folder
    mine = tmp_path / "my.toml"
    mine.write_text(printed.stdout, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "check", str(mine)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    assert (
        "OK, 6 callbacks: progress_bar, timer, metrics_logger, csv_logger, early_stopping, checkpoint" in checked.stdout
    )


def test_print_config_takes_no_config() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--print-config", "--config", "x.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "argument --config: not allowed with argument --print-config" in done.stderr


def test_the_embedded_demo_ends_with_the_commands_to_start_a_config_of_ones_own(tmp_path: Path) -> None:
    out = io.StringIO()
    run_demo(epochs=1, output=tmp_path / "run", stream=out)
    ending = out.getvalue().split("\nNext: ", 1)[1]
    assert ending == (
        "write this config to a file of your own, change its callbacks\n"
        "(sara-callbacks list shows them all), and run it:\n"
        "  sara-callbacks demo --print-config > my.toml\n"
        "  sara-callbacks demo --config my.toml\n"
    )
    assert "site-packages" not in out.getvalue()


def test_a_reused_output_folder_holding_another_run_is_refused_with_the_way_to_resume_it(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('callbacks = ["history"]\n' + FAST)
    run_demo(config=config, epochs=1, output=tmp_path / "run", stream=io.StringIO())
    with pytest.raises(ConfigError, match=r"holds another run .*sara-callbacks demo --resume .*run"):
        run_demo(config=config, epochs=2, output=tmp_path / "run", stream=io.StringIO())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="the folder is not empty"):
        run_demo(config=config, epochs=1, output=tmp_path / "other", stream=io.StringIO())


def test_resume_continues_a_run_with_its_own_config_and_refuses_what_is_no_run(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('callbacks = ["history", { name = "csv_logger", params = { path = "m.csv" } }]\n' + FAST)
    run_demo(config=config, epochs=2, output=tmp_path / "run", stream=io.StringIO())
    stream = io.StringIO()
    run_demo(resume=tmp_path / "run", stream=stream)
    assert "resuming" in stream.getvalue()
    assert "Training ended after epoch 1" in stream.getvalue()
    assert len(csv_rows(tmp_path / "run" / "m.csv")) == 2
    with pytest.raises(ConfigError, match="cannot be given"):
        run_demo(resume=tmp_path / "run", config=config, stream=io.StringIO())
    with pytest.raises(ConfigError, match=r"holds no state\.json"):
        run_demo(resume=tmp_path, stream=io.StringIO())


SIGNALLED = """\
[[callbacks]]
name = "csv_logger"
params = { path = "metrics.csv", per_batch = true }

[demo]
epochs = 6
points = 60
batch_size = 20
pause_seconds = 0.02
"""


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_a_second_sigterm_ends_the_demo_with_143_not_by_the_signal_and_the_run_resumes(
    tmp_path: Path, trial: int
) -> None:
    """Issue 25, item 7: a SIGTERM that came after the first one's stop killed the demo by the signal (-15)."""
    import os
    import signal
    import time

    (tmp_path / "demo.toml").write_text(SIGNALLED, encoding="utf-8")
    command = [sys.executable, "-m", "altametris.sara.core", "demo", "--config", "demo.toml", "--output", "run"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "metrics.csv").exists() or (tmp_path / "run" / "metrics.csv").stat().st_size < 60:
        assert process.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.01 * trial)
    os.kill(process.pid, signal.SIGTERM)
    sent = 1
    while process.poll() is None:  # a second SIGTERM, and more, until the process ends: each must end it with 143
        time.sleep(0.0005)
        try:
            os.kill(process.pid, signal.SIGTERM)
            sent += 1
        except ProcessLookupError:
            break
    output = process.communicate(timeout=60)[0]
    assert sent > 1
    assert process.returncode == 143, f"exit status {process.returncode} after {sent} SIGTERMs:\n{output}"
    resumed = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--resume", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    epochs = [row["epoch"] for row in csv_rows(tmp_path / "run" / "metrics.csv") if row["batch"] == ""]
    assert epochs == [str(epoch) for epoch in range(6)]
