"""A run killed at any moment (SIGKILL: no cleanup at all) leaves CSV and JSONL files of complete rows, which a resumed
run appends to.

Every row is one write of a whole line, so a kill leaves no partial line: the files are checked as they are, nothing
cut first. (test_write_boundaries.py visits every state a kill can leave; this test kills a running process at
moments chosen by the clock.)
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

# Writes 3 batch rows and an epoch row per epoch, with a new metric in each of the first 60 epochs: the CSV header is
# rewritten (through a temporary file and os.replace) again and again while the parent test kills the process.
WRITER = textwrap.dedent(
    """
    import sys, time
    from altametris.sara.core.base_callback import CallbackManager
    from altametris.sara.core.loop import fit
    from altametris.sara.plugins.csv_logger import CSVLogger
    from altametris.sara.plugins.jsonl_logger import JSONLLogger

    folder, append, epochs = sys.argv[1], sys.argv[2] == "append", int(sys.argv[3])
    manager = CallbackManager([
        CSVLogger(path=folder + "/m.csv", per_batch=True, append=append),
        JSONLLogger(path=folder + "/m.jsonl", per_batch=True, append=append),
    ])

    def step(item):
        epoch, batch = item
        time.sleep(0.0005)
        return {"loss": 1.0 / (batch + 1), "x" * 30: 12345.678901234, f"m{min(epoch, 60)}": 0.25}

    fit(manager, epochs=epochs, data=lambda epoch: [(epoch, batch) for batch in range(3)],
        train_step=step, validate=lambda: {"val_loss": 0.5})
    """
)


def run_writer(folder: Path, *, append: bool, epochs: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), "append" if append else "new", str(epochs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def complete_csv_rows(path: Path) -> list[list[str]]:
    """The file's rows, asserting that the file holds only complete rows: nothing is cut before checking."""
    text = path.read_text()
    assert text.endswith("\n"), f"{path.name} ends with a partial row: {text[-120:]!r}"
    rows = list(csv.reader(text.splitlines()))
    assert rows, "no header"
    width = len(rows[0])
    assert rows[0][:2] == ["epoch", "batch"]
    for row in rows[1:]:
        assert len(row) == width, f"a complete row with {len(row)} cells under a header of {width}: {row}"
        int(row[0])
        assert row[1] == "" or int(row[1]) >= 0
    return rows


def complete_json_lines(path: Path) -> list[dict[str, object]]:
    """The file's records, asserting that its last line is complete."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"{path.name} ends with a partial line: {text[-120:]!r}"
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.11, 0.23])
def test_files_of_a_killed_run_hold_only_complete_rows_and_a_resumed_run_appends(delay: float, tmp_path: Path) -> None:
    writer = run_writer(tmp_path, append=False, epochs=100_000)
    csv_path = tmp_path / "m.csv"
    deadline = time.monotonic() + 30
    while not (csv_path.exists() and csv_path.stat().st_size > 200):
        assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else ""
        assert time.monotonic() < deadline, "the writer wrote nothing"
        time.sleep(0.005)
    time.sleep(delay)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    if writer.stderr:
        writer.stderr.close()

    rows = complete_csv_rows(csv_path)
    lines = complete_json_lines(tmp_path / "m.jsonl")
    assert len(rows) > 1
    assert lines

    resumed = run_writer(tmp_path, append=True, epochs=2)
    _, errors = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, errors.decode()
    assert csv_path.read_text().endswith("\n")
    after = complete_csv_rows(csv_path)
    assert len(after) == len(rows) + 2 * 4  # 2 epochs of 3 batch rows and 1 epoch row
    assert after[1 : len(rows)] == [row + [""] * (len(after[0]) - len(row)) for row in rows[1:]]
    assert len(complete_json_lines(tmp_path / "m.jsonl")) == len(lines) + 8
