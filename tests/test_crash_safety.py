"""Crash safety, for real: ``sara-callbacks demo`` killed with SIGKILL at random moments leaves only complete records.

This is the second layer: test_write_boundaries.py kills a run right after each of its file changes, every state a
crash can leave; these trials kill the demo at moments chosen by the clock, in a run going at its usual pace, with
logging, a timer and a longer training.

Each trial runs the demo as a subprocess with per-batch CSV and JSON Lines logs and checkpoints, kills it at a random
moment (no cleanup of any kind runs), and reads every file the run folder holds: each CSV row is as wide as its
header, each JSON line parses, each checkpoint parses; no file ends with a partial record. Only the writers'
temporaries (``.<name>.<pid>.tmp``, never read as results) may be left next to their targets.

The trials run side by side. ``SARA_KILL_TRIALS`` sets how many (8 by default, 64 in ``tox -e fuzz``) and
``SARA_KILL_SEED`` replays a run's kill times (the seed is printed, and named in every failure).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import signal
import subprocess
import time
from typing import TYPE_CHECKING, NamedTuple

import pytest
from _helpers import demo_config, start_demo

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

TRIALS = int(os.environ.get("SARA_KILL_TRIALS", "8"))
SEED = int(os.environ.get("SARA_KILL_SEED", str(random.SystemRandom().randrange(2**32))))

CONFIG = demo_config(
    before=["timer"],
    after=["metrics_logger"],
    save_top_k=3,
    epochs=400,
    points=200,
    batch_size=8,
    learning_rate=0.05,
    pause_seconds=0.001,
)


class Trial(NamedTuple):
    folder: Path
    process: subprocess.Popen[str]
    delay: float  # seconds after the training starts (negative: after the process starts, maybe before any file)


def _start(config: Path, folder: Path) -> subprocess.Popen[str]:
    return start_demo("--config", str(config), "--output", str(folder), stdout=subprocess.DEVNULL)


def check_run_folder(folder: Path) -> dict[str, int]:
    """Assert that every record in ``folder`` is complete; return how many records of each kind it holds."""
    found = {"csv rows": 0, "json lines": 0, "checkpoints": 0, "log lines": 0, "temporaries": 0}
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            found["temporaries"] += 1  # a write in flight: never a result, replaced atomically when complete
            continue
        if path.name.startswith(".") and path.name.endswith(".lock"):
            continue  # a writer's lock (held by the live run, or left unlocked by a killed one): never a result
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".csv", ".jsonl", ".log"):
            assert not text or text.endswith("\n"), f"{path} ends with a partial record: {text[-120:]!r}"
        if path.suffix == ".csv":
            rows = list(csv.reader(io.StringIO(text)))
            if rows:
                header = rows[0]
                assert header[:2] == ["epoch", "batch"], header
                for row in rows[1:]:
                    assert len(row) == len(header), f"{path}: a row of {len(row)} cells under {len(header)}: {row}"
                    int(row[0])
                    float(row[header.index("loss")])
                found["csv rows"] += len(rows) - 1
        elif path.suffix == ".jsonl":
            for line in text.splitlines():
                record = json.loads(line)
                assert isinstance(record["epoch"], int)
                found["json lines"] += 1
        elif path.name == "state.json":
            assert isinstance(json.loads(text), dict)
        elif path.suffix == ".json":
            checkpoint = json.loads(text)
            assert len(checkpoint["weights"]) == 2
            found["checkpoints"] += 1
        elif path.suffix == ".log":
            found["log lines"] += len(text.splitlines())
        else:
            pytest.fail(f"unexpected file in the run folder: {path}")
    return found


def _kill_all(trials: list[Trial]) -> tuple[int, dict[str, int]]:
    """Kill each trial at its moment; check its folder. Return how many were killed mid-run, and the records seen."""
    started = time.monotonic()
    kill_at: dict[int, float] = {index: started - trial.delay for index, trial in enumerate(trials) if trial.delay < 0}
    pending = set(range(len(trials)))
    totals: dict[str, int] = {}
    killed_mid_run = 0
    while pending:
        now = time.monotonic()
        assert now - started < 60, f"trials still waiting for the training to start (seed {SEED})"
        for index in sorted(pending):
            trial = trials[index]
            if index not in kill_at and (trial.folder / "train.log").exists():  # the training has started
                kill_at[index] = now + trial.delay
            running = trial.process.poll() is None
            if running and now < kill_at.get(index, math.inf):
                continue
            trial.process.kill()
            trial.process.wait(timeout=30)
            errors = trial.process.stderr.read() if trial.process.stderr else ""
            if trial.process.stderr:
                trial.process.stderr.close()
            assert running or trial.process.returncode == 0, f"the demo failed before it was killed:\n{errors}"
            killed_mid_run += running
            pending.discard(index)
            if trial.folder.exists():
                try:
                    seen = check_run_folder(trial.folder)
                except AssertionError as error:
                    replay = f"trial {index}; SARA_KILL_SEED={SEED} replays the kill times"
                    raise AssertionError(f"{error} ({replay})") from None
                for kind, count in seen.items():
                    totals[kind] = totals.get(kind, 0) + count
        time.sleep(0.002)
    return killed_mid_run, totals


def test_the_demo_killed_at_random_moments_leaves_only_complete_records(tmp_path: Path) -> None:
    print(f"SARA_KILL_SEED={SEED} SARA_KILL_TRIALS={TRIALS}")  # shown with -s, and with the report of a failure
    rng = random.Random(SEED)
    config = tmp_path / "crash.toml"
    config.write_text(CONFIG, encoding="utf-8")
    killed_mid_run, totals = 0, {}
    for first in range(0, TRIALS, 8):  # 8 at a time, so that the kills land in runs going at their usual pace
        trials = []
        for index in range(first, min(first + 8, TRIALS)):
            folder = tmp_path / f"run{index}"
            delay = rng.uniform(0.0, 1.5) if index % 8 else -rng.uniform(0.05, 1.0)
            trials.append(Trial(folder, _start(config, folder), delay))
        killed, seen = _kill_all(trials)
        killed_mid_run += killed
        for kind, count in seen.items():
            totals[kind] = totals.get(kind, 0) + count
    print(f"{TRIALS} kill trials (seed {SEED}, SARA_KILL_SEED replays them): {killed_mid_run} killed mid-run; {totals}")
    assert killed_mid_run == TRIALS, f"every kill should land while the demo runs (seed {SEED})"
    assert totals.get("csv rows", 0) > 0, f"no trial got as far as writing rows (seed {SEED})"


def test_the_demo_replaces_state_json_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from altametris.sara.core.cli import demo

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def recording_replace(source: str, target: str) -> None:
        replaced.append((os.path.basename(source), os.path.basename(target)))
        real_replace(source, target)

    monkeypatch.setattr(demo.os, "replace", recording_replace)
    config = tmp_path / "crash.toml"
    config.write_text(CONFIG, encoding="utf-8")
    folder = demo.run_demo(config=config, epochs=1, output=tmp_path / "run", stream=io.StringIO())
    assert (f".state.json.{os.getpid()}.tmp", "state.json") in replaced
    assert isinstance(json.loads((folder / "state.json").read_text(encoding="utf-8")), dict)
    assert check_run_folder(folder)["temporaries"] == 0
