"""Kill and resume: ``sara-callbacks demo`` killed (SIGKILL) or preempted (SIGTERM) at random moments, then continued
with ``demo --resume``, ends exactly as an uninterrupted run of the same config.

Compared with the uninterrupted run: every row of ``metrics.csv`` (per-batch rows included) and of the JSON Lines log,
every column but the timer's; the stop epoch and the stop reason; the checkpoint folder, which holds exactly the same
best K files, with the same weights; and no temporary file anywhere. Some trials are killed twice (the resumed run
too). SIGTERM trials must also end cleanly (exit status 143, no traceback, the command that resumes) within one batch:
the run writes at most the batch in flight (and the end of its epoch, when it was the last batch) after the signal.

The trials run side by side. ``SARA_KILL_TRIALS`` sets how many of each signal (8 by default, 64 in ``tox -e fuzz``);
``SARA_KILL_SEED`` replays a run's kill times (the seed is printed, and named in every failure).

The other tests signal the demo at a chosen file change instead (tests/kill_at_write.py), the same point every time
whatever the machine's load: a Ctrl-C right after a snapshot, and a SIGKILL at each state that a checkpoint's save can
leave (its temporary half written, the file in place but not in the saved state, an older file already removed).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from _helpers import KILL_AT_WRITE, TIMER_COLUMNS, csv_rows, demo_config, json_lines, start_demo

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL") or os.name == "nt", reason="needs POSIX signals"),
]

TRIALS = int(os.environ.get("SARA_KILL_TRIALS", "8"))
SEED = int(os.environ.get("SARA_KILL_SEED", str(random.SystemRandom().randrange(2**32))))

CONFIG = demo_config(
    before=["timer"],
    after=[("early_stopping", {"monitor": "val_loss", "patience": 3, "min_delta": 0.002}), "history"],
    jsonl_per_batch=False,
    epochs=60,
    points=160,
    batch_size=16,
    learning_rate=0.5,
    pause_seconds=0.004,
)


class Outcome(NamedTuple):
    """What a run folder holds at the end, compared between runs."""

    csv_rows: list[dict[str, str]]
    json_lines: list[dict[str, Any]]
    stop_epoch: int | None
    stop: dict[str, Any] | None
    checkpoints: dict[str, Any]


def outcome(folder: Path) -> Outcome:
    temporaries = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.tmp"))
    assert temporaries == [], f"temporary files left (seed {SEED}): {temporaries}"
    rows = csv_rows(folder / "metrics.csv", drop=TIMER_COLUMNS)
    lines = json_lines(folder / "logs" / "metrics.jsonl", drop=TIMER_COLUMNS)
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    checkpoints = {}
    for path in sorted((folder / "checkpoints").iterdir()):
        saved = json.loads(path.read_text(encoding="utf-8"))
        checkpoints[path.name] = (saved["weights"], saved["bias"])
    return Outcome(rows, lines, state["epoch"], state["stop"], checkpoints)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome, float]:
    """The uninterrupted run: its config, what it ends with, and how long it trains."""
    root = tmp_path_factory.mktemp("reference")
    config = root / "train.toml"
    config.write_text(CONFIG)
    process = start_demo("--config", str(config), "--output", str(root / "run"))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped by early_stopping" in out  # the comparison covers an early stop, and K files of a ranking
    seconds = float(out.split("stopped by early_stopping), in ")[1].split(" s.")[0])  # the training's own time
    return config, outcome(root / "run"), seconds


def _wait_for_start(folder: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not (folder / "train.log").exists():
        assert process.poll() is None, f"the demo ended before it trained: {process.communicate()[1]}"
        assert time.monotonic() < deadline, "the demo did not start training in 60 s"
        time.sleep(0.002)


def _resume(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--resume", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run_trials(
    reference: tuple[Path, Outcome, float], root: Path, signum: int
) -> tuple[list[tuple[Path, int]], list[float]]:
    """Run the trials 8 at a time: signal each at its random moment (twice for one trial in three).

    Returns each trial's folder and kill count, and the seconds each SIGTERM-ed process took to exit.
    """
    config, _, duration = reference
    rng = random.Random(f"{SEED}:{signum}")
    print(f"\nSARA_KILL_SEED={SEED} SARA_KILL_TRIALS={TRIALS} signal={signal.Signals(signum).name}")
    trials = [(root / f"trial{index}", 2 if index % 3 == 2 else 1) for index in range(TRIALS)]
    exit_seconds: list[float] = []
    for first in range(0, TRIALS, 8):  # 8 side by side, so that the runs go at their usual pace
        for round_ in range(2):
            running = []
            for folder, kills in trials[first : first + 8]:
                if round_ >= kills:
                    continue
                args = ("--config", str(config), "--output", str(folder)) if round_ == 0 else ("--resume", str(folder))
                running.append((folder, start_demo(*args), rng.uniform(0.0, duration)))
            for folder, process, _ in running:
                _wait_for_start(folder, process)
            started = time.monotonic()
            for folder, process, delay in sorted(running, key=lambda trial: trial[2]):
                time.sleep(max(0.0, started + delay - time.monotonic()))
                exit_seconds += _signal(folder, process, signum)
    return trials, exit_seconds


LANDED: dict[str, int] = {}  # signals that reached a running demo, by signal name: printed with the results


def _signal(folder: Path, process: subprocess.Popen[str], signum: int) -> list[float]:
    """Send ``signum``; check how the process ended; return how long a SIGTERM-ed one took to exit."""
    batch_rows = _batch_rows(folder)
    sent = time.monotonic()
    if process.poll() is None:
        process.send_signal(signum)
        name = signal.Signals(signum).name
        LANDED[name] = LANDED.get(name, 0) + 1
    out, err = process.communicate(timeout=60)
    if signum != signal.SIGTERM or process.returncode != 143:
        assert process.returncode in (0, -signum), f"seed {SEED}: exit {process.returncode}: {err}"
        return []
    seconds = time.monotonic() - sent
    assert "Traceback" not in err, f"seed {SEED}: {err}"
    assert f"Resume with: sara-callbacks demo --resume {folder}" in out, f"seed {SEED}: {out}"
    # Within one batch: after the signal, the batch in flight only (and one that may have ended while the rows were
    # counted, a few microseconds before the signal).
    assert _batch_rows(folder) - batch_rows <= 2, f"seed {SEED}: {folder.name} went on training after SIGTERM"
    return [seconds]


def _batch_rows(folder: Path) -> int:
    try:
        with open(folder / "metrics.csv", newline="", encoding="utf-8") as file:
            return sum(1 for row in csv.DictReader(file) if row["batch"])
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_run_signalled_at_random_moments_and_resumed_ends_as_an_uninterrupted_one(
    signum: int, reference: tuple[Path, Outcome, float], tmp_path: Path
) -> None:
    _, expected, _ = reference
    trials, exit_seconds = _run_trials(reference, tmp_path, signum)
    for folder, kills in trials:
        resumed = _resume(folder)
        assert resumed.returncode == 0, f"seed {SEED}, {folder.name} ({kills} kills): {resumed.stderr}"
        assert "resuming" in resumed.stdout
        got = outcome(folder)
        assert got.stop_epoch == expected.stop_epoch, f"seed {SEED}, {folder.name}"
        assert got.stop == expected.stop, f"seed {SEED}, {folder.name}"
        assert got.checkpoints == expected.checkpoints, f"seed {SEED}, {folder.name}"
        assert got.csv_rows == expected.csv_rows, f"seed {SEED}, {folder.name}: metrics.csv differs"
        assert got.json_lines == expected.json_lines, f"seed {SEED}, {folder.name}: metrics.jsonl differs"
    name = signal.Signals(signum).name
    print(
        f"{TRIALS} trials: {LANDED.get(name, 0)} {name} landed in a running demo; "
        "every resumed run ended as the uninterrupted one"
    )
    if exit_seconds:
        exit_seconds.sort()
        print(
            f"SIGTERM to exit: {len(exit_seconds)} runs, median {exit_seconds[len(exit_seconds) // 2] * 1000:.0f} ms, "
            f"max {exit_seconds[-1] * 1000:.0f} ms (a batch: 4 ms of pause plus its compute)"
        )


def _signal_at_write(
    config: Path, folder: Path, matching: str, count: int, signal_name: str
) -> subprocess.CompletedProcess[str]:
    """Run the demo of ``config`` into ``folder`` until its ``count``-th file change that starts with ``matching``,
    right after which it sends itself ``signal_name`` (tests/kill_at_write.py: the point is a write, not a time)."""
    env = {**os.environ, "KILL_AT_WRITE_MATCHING": matching, "KILL_AT_WRITE_SIGNAL": signal_name}
    events = folder.with_name(f"{folder.name}-events.txt")
    command = [
        sys.executable,
        str(KILL_AT_WRITE),
        str(folder),
        str(count),
        str(events),
        "demo",
        str(config),
        str(folder),
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_issue13_repro4_sigint_keeps_its_exit_status_and_the_last_saved_state_resumes(
    reference: tuple[Path, Outcome, float], tmp_path: Path
) -> None:
    config, expected, _ = reference
    folder = tmp_path / "run"
    # Ctrl-C right after the snapshot of epoch 2 is in place: the 4th, the first being the run's start.
    interrupted = _signal_at_write(config, folder, "replace .state.json.", 4, "SIGINT")
    assert interrupted.returncode == 130, interrupted.stderr  # today's behaviour: on_exception, then exit 130
    assert "interrupted" in interrupted.stderr
    assert "Interrupted: the state after epoch 2 is saved" in interrupted.stdout
    assert f"Resume with: sara-callbacks demo --resume {folder}" in interrupted.stdout
    assert json.loads((folder / "state.json").read_text())["epoch"] == 2
    resumed = _resume(folder)
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(folder) == expected


def _kept_by_the_state(folder: Path) -> set[str]:
    """The checkpoint files that the run's ``state.json`` lists."""
    callbacks = json.loads((folder / "state.json").read_text(encoding="utf-8"))["callbacks"]
    (state,) = [state for key, state in callbacks.items() if key.startswith("Checkpoint")]
    return {filename for filename, _, _ in state["saved"]}


@pytest.mark.parametrize(
    "point",
    [
        "open checkpoints/.",  # the third checkpoint half written: its temporary file is left
        "replace checkpoints/.",  # the third checkpoint in place, which the saved state does not list
        "unlink checkpoints/",  # the file the third checkpoint pushed out of the best 2 removed; the state lists it
    ],
)
def test_a_run_killed_while_it_saves_a_checkpoint_and_resumed_keeps_the_files_of_an_uninterrupted_run(
    point: str, reference: tuple[Path, Outcome, float], tmp_path: Path
) -> None:
    config, expected, _ = reference
    folder = tmp_path / "run"
    killed = _signal_at_write(config, folder, point, 1 if point.startswith("unlink") else 3, "SIGKILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = {path.name for path in (folder / "checkpoints").iterdir()}
    assert left != _kept_by_the_state(folder), f"killed at {point!r}, nothing was left to clean up: {left}"
    resumed = _resume(folder)
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(folder) == expected
