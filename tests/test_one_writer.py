"""One writer per file: a second live training on the same files is refused, naming them and the other process.

Real processes, real locks (``fcntl.flock``, which the kernel drops when its process dies): two trainings started
together on one output (issue 25, item 2: today both return normally, the JSON Lines hold half the rows, the CSV rows
of 6 cells under a 5-column header), a holder killed with SIGKILL (its resume is not blocked), and the demo's run
folder.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL and fcntl.flock (POSIX)")]

TRAIN = """\
import pathlib, sys, time
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.checkpoint import Checkpoint
from altametris.sara.plugins.csv_logger import CSVLogger
from altametris.sara.plugins.jsonl_logger import JSONLLogger

folder, only, gate, hang = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3]), sys.argv[4] == "hang"
callbacks = {
    "csv": CSVLogger(path="m.csv", per_batch=True),
    "jsonl": JSONLLogger(path="m.jsonl", per_batch=True),
    "checkpoint": Checkpoint(dirpath="ckpt", monitor=None, save_top_k=-1, filename="e{epoch}.json"),
}
manager = CallbackManager([callbacks[name] for name in only.split(",")])
while not gate.exists():  # both processes start their training at the same moment
    time.sleep(0.001)

def step(batch):
    if hang and batch == 3:
        (folder / "ready").touch()
        time.sleep(3600)  # a live training, in the middle of its run: killed by the test
    time.sleep(0.01)
    return {"loss": 1.0 / (batch + 1), "pid": 0.0}

def save(path):
    pathlib.Path(path).write_text('{"weights": [1, 2]}')

try:
    fit(manager, epochs=3, data=lambda epoch: range(10), train_step=step, output_dir=folder, save_checkpoint=save)
except TrainingError as error:
    print(error, file=sys.stderr)
    sys.exit(3)
"""


def start(tmp_path: Path, folder: Path, callbacks: str, *, hang: bool = False) -> subprocess.Popen[str]:
    script = tmp_path / "train.py"
    script.write_text(TRAIN, encoding="utf-8")
    command = [sys.executable, str(script), str(folder), callbacks, str(tmp_path / "go"), "hang" if hang else "run"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def whole_rows(folder: Path) -> tuple[list[list[str]], list[dict[str, object]]]:
    with open(folder / "m.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    for row in rows[1:]:
        assert len(row) == len(rows[0]), row
    lines = [json.loads(line) for line in (folder / "m.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows, lines


@pytest.mark.parametrize("callbacks", ["csv", "jsonl", "checkpoint", "csv,jsonl,checkpoint"])
def test_two_trainings_started_together_on_one_output_one_is_refused_naming_the_file_and_the_other_pid(
    tmp_path: Path, callbacks: str
) -> None:
    folder = tmp_path / "out"
    first, second = start(tmp_path, folder, callbacks), start(tmp_path, folder, callbacks)
    time.sleep(0.5)  # both imported and waiting at the gate
    (tmp_path / "go").touch()
    results = {process.pid: (process.wait(timeout=120), process.communicate()[1]) for process in (first, second)}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 3], results
    (winner,) = [pid for pid, (code, _) in results.items() if code == 0]
    (refused,) = [error for code, error in results.values() if code == 3]
    assert f"process {winner}" in refused
    assert "is being written by" in refused
    guarded = {"csv": folder / "m.csv", "jsonl": folder / "m.jsonl", "checkpoint": folder / "ckpt"}
    assert any(str(guarded[name]) in refused for name in callbacks.split(",")), refused
    if "csv" in callbacks:
        lines = whole_rows(folder)[1] if "jsonl" in callbacks else None
        with open(folder / "m.csv", encoding="utf-8", newline="") as file:
            assert len(list(csv.reader(file))) == 1 + 3 * 11  # one run's rows: 10 batches and the epoch, 3 epochs
        if lines is not None:
            assert len(lines) == 3 * 11
    if "checkpoint" in callbacks:
        assert sorted(path.name for path in (folder / "ckpt").iterdir()) == ["e0.json", "e1.json", "e2.json"]
    assert not [path.name for path in folder.rglob(".*.lock")]  # the winner released its locks


def test_a_training_killed_with_sigkill_does_not_block_the_next_one_on_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (tmp_path / "go").touch()
    holder = start(tmp_path, folder, "csv,jsonl,checkpoint", hang=True)
    wait_for(folder / "ready", holder)
    refused = start(tmp_path, folder, "csv,jsonl,checkpoint")
    code, error = refused.wait(timeout=60), refused.communicate()[1]
    assert code == 3, error
    assert f"is being written by process {holder.pid}" in error
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    assert sorted(path.name for path in folder.rglob(".*.lock")) == [
        ".m.csv.lock",
        ".m.jsonl.lock",
        ".sara-checkpoint.lock",
    ]
    after = start(tmp_path, folder, "csv,jsonl,checkpoint")  # the killed run's lock files are left, unlocked
    assert after.wait(timeout=120) == 0, after.communicate()
    after.communicate()
    rows, lines = whole_rows(folder)
    assert len(rows) == 1 + 3 * 11
    assert len(lines) == 3 * 11
    assert not list(folder.rglob(".*.lock"))


DEMO = """\
[[callbacks]]
name = "csv_logger"
params = { path = "metrics.csv", per_batch = true }

[[callbacks]]
name = "checkpoint"
params = { dirpath = "checkpoints", monitor = "val_loss", save_top_k = 2, filename = "epoch{epoch:03d}.json" }

[demo]
epochs = 4
points = 60
batch_size = 20
pause_seconds = 0.2
"""


def demo(*arguments: str, cwd: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "altametris.sara.core", "demo", *arguments]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_resume_of_a_run_folder_a_live_demo_writes_is_refused_and_after_a_sigkill_it_resumes(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text(DEMO, encoding="utf-8")
    run = tmp_path / "run"
    live = demo("--config", "demo.toml", "--output", "run", cwd=tmp_path)
    try:
        wait_for(run / "metrics.csv", live)
        second = demo("--resume", "run", cwd=tmp_path)
        output = second.communicate(timeout=60)[0]
        assert live.poll() is None  # the live demo went on, untouched
    finally:
        if live.poll() is None:
            os.kill(live.pid, signal.SIGKILL)
        live.communicate(timeout=30)
    assert second.returncode != 0
    assert f"the run folder run is being written by process {live.pid}" in output, output
    assert "Traceback" not in output
    assert live.returncode == -signal.SIGKILL
    resumed = demo("--resume", "run", cwd=tmp_path)
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    with open(run / "metrics.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    epochs = [row for row in rows[1:] if row[1] == ""]
    assert [row[0] for row in epochs] == ["0", "1", "2", "3"]
    assert not list(run.rglob(".*.lock"))
