"""Crash safety at every write boundary: a run is killed right after each of its file changes, one run per change.

The random kill trials (test_crash_safety.py) land where the clock puts them, and a window of a few microseconds
between two writes is seldom hit. Here a child process (tests/kill_at_write.py) counts every change that the
library makes to a file (an open for writing, a write that reaches the system, a truncation, a replace, a removal)
and sends itself SIGKILL right after the k-th one, for every k of a short run: every state that a crash can leave
is visited, every time. Each one must hold only complete records (a last line without its newline fails: nothing is
cut before checking), each record must be one the uninterrupted run wrote, and no state may hold fewer records than
the state before it (a file rewritten in place, instead of through a temporary file and ``os.replace``, loses its
rows for a moment, and that moment is one of the states).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _helpers import KILL_AT_WRITE, demo_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

DEMO_CONFIG = demo_config(epochs=4, points=50, batch_size=20, learning_rate=0.5, pause_seconds=0)

Records = dict[str, Any]


def read_records(folder: Path) -> Records:
    """Every record of every file in ``folder``, asserting that each file holds only complete records."""
    records: Records = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_dir() or (path.name.startswith(".") and path.name.endswith((".tmp", ".lock"))):
            continue  # a temporary file is a write in flight, a lock file a writer's (left by a kill): no result
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".csv", ".jsonl", ".log"):
            assert text == "" or text.endswith("\n"), f"{name} ends with a partial record: {text[-100:]!r}"
        if path.suffix == ".csv":
            rows = list(csv.reader(io.StringIO(text)))
            for row in rows[1:]:
                assert len(row) == len(rows[0]), f"{name}: a row of {len(row)} cells under {len(rows[0])}: {row}"
            records[name] = rows
        elif path.suffix == ".jsonl":
            records[name] = [json.loads(line) for line in text.splitlines()]
        elif path.suffix == ".json":
            records[name] = json.loads(text)
        elif path.suffix == ".log":
            records[name] = text.splitlines()
        else:
            pytest.fail(f"unexpected file {name}")
    return records


def check_against_the_full_run(records: Records, final: Records) -> None:
    """Each record of a killed run is the one the uninterrupted run wrote at that place."""
    for name, value in records.items():
        if name.endswith(".csv") and value:
            header, width = value[0], len(final[name][0])
            assert final[name][0][: len(header)] == header, f"{name}: header {header} is not the run's"
            padded = [row + [""] * (width - len(row)) for row in value[1:]]
            assert padded == final[name][1 : len(padded) + 1], f"{name}: rows that the full run did not write"
        elif name.endswith(".jsonl"):
            assert value == final[name][: len(value)], f"{name}: lines that the full run did not write"
        elif name.startswith("checkpoints/"):
            assert len(value["weights"]) == 2, f"{name}: {value}"
        elif name == "state.json":  # rewritten after every epoch: a whole snapshot of the run at one epoch's end
            final_epoch, epoch = final[name]["epoch"], value["epoch"]
            assert epoch is None or 0 <= epoch <= final_epoch, f"state.json of epoch {epoch}"
            if epoch == final_epoch:
                assert value == final[name], "state.json of the last epoch differs from the full run's"
            for key, state in value["callbacks"].items():
                if key.startswith(("CSVLogger", "JSONLLogger")):
                    assert state["epoch"] == epoch, f"state.json of epoch {epoch} holds {key} at {state['epoch']}"


def counts(records: Records) -> dict[str, int]:
    """How many records each logger's file holds (rows under the header, lines), and whether a checkpoint exists."""
    found = {name: max(0, len(value) - 1) if name.endswith(".csv") else len(value) for name, value in records.items()}
    found = {name: count for name, count in found.items() if name.endswith((".csv", ".jsonl"))}
    found["any checkpoint"] = int(any(name.startswith("checkpoints/") for name in records))
    state = records.get("state.json")
    found["state.json"] = 0 if state is None else 1 if state["epoch"] is None else 2 + state["epoch"]  # never backwards
    return found


def kill_at_every_write(
    tmp_path: Path, workload: Callable[[Path], list[str]], prepare: Callable[[Path], None] = lambda folder: None
) -> tuple[int, Records]:
    """Run ``workload`` once in full, then once per file change killed right after it; check every state left."""

    def run(kill_at: int) -> tuple[Path, subprocess.CompletedProcess[str], Path]:
        trial = tmp_path / f"trial{kill_at}"
        folder, events = trial / "run", trial / "events.txt"
        folder.mkdir(parents=True)
        prepare(folder)
        command = [sys.executable, str(KILL_AT_WRITE), str(folder), str(kill_at), str(events), *workload(folder)]
        return folder, subprocess.run(command, capture_output=True, text=True, timeout=300, check=False), events

    def events_of(path: Path) -> list[str]:
        return re.sub(r"\.\d+\.tmp", ".<pid>.tmp", path.read_text(encoding="utf-8")).splitlines()

    folder, full, events = run(0)
    assert full.returncode == 0, full.stderr
    changes = events_of(events)
    final = read_records(folder)
    _, again, events_again = run(-1)  # a second full run: the same changes in the same order, or k means nothing
    assert again.returncode == 0, again.stderr
    assert events_of(events_again) == changes

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        trials = list(pool.map(run, range(1, len(changes) + 1)))
    start = tmp_path / "start"
    start.mkdir()
    prepare(start)
    previous = counts(read_records(start))  # what the run starts from: no state may hold less
    for kill_at, (killed, process, _) in enumerate(trials, start=1):
        assert process.returncode == -signal.SIGKILL, (
            f"the run should have been killed after change {kill_at} ({changes[kill_at - 1]}), "
            f"it ended with {process.returncode}: {process.stderr}"
        )
        where = f"killed right after change {kill_at} of {len(changes)}: {changes[kill_at - 1]}"
        try:
            records = read_records(killed)
            check_against_the_full_run(records, final)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from error
        now = counts(records)
        fewer = {name: (count, now.get(name, 0)) for name, count in previous.items() if now.get(name, 0) < count}
        assert not fewer, f"{where}: records lost since the change before, (before, now): {fewer}"
        previous = now
        shutil.rmtree(killed.parent)
    return len(changes), final


def test_the_demo_killed_after_each_file_change_leaves_complete_records(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    config.write_text(DEMO_CONFIG, encoding="utf-8")
    changes, final = kill_at_every_write(tmp_path, lambda folder: ["demo", str(config), str(folder)])
    assert {"metrics.csv", "logs/metrics.jsonl", "state.json"} <= set(final)
    assert len(final["metrics.csv"]) == 1 + 4 * 3  # header, then per epoch 2 batch rows and the epoch row
    assert sum(name.startswith("checkpoints/") for name in final) == 2
    assert changes > 40


def test_the_loggers_appending_to_a_previous_run_keep_its_rows_at_every_file_change(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    subprocess.run(  # a complete earlier run of 2 epochs, which the killed runs append to
        [
            sys.executable,
            str(KILL_AT_WRITE),
            str(seed),
            "0",
            str(tmp_path / "seed-events.txt"),
            "loggers",
            str(seed),
            "2",
        ],
        check=True,
        capture_output=True,
    )
    seeded = counts(read_records(seed))
    assert seeded["m.csv"] == seeded["m.jsonl"] == 6

    def prepare(folder: Path) -> None:
        for name in ("m.csv", "m.jsonl"):
            shutil.copy(seed / name, folder / name)

    changes, final = kill_at_every_write(tmp_path, lambda folder: ["loggers", str(folder), "3"], prepare)
    assert counts(final)["m.csv"] == 6 + 9
    assert final["m.csv"][0] == ["epoch", "batch", "loss", "metric_0", "val_loss", "metric_1", "metric_2"]
    assert changes > 20
