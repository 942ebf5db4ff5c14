"""Two real processes under ``torchrun`` (gloo, CPU): a stop on one rank stops both, and only rank 0 writes files.

Runs where torch is installed (``tox -e distributed``, which CI runs, sets ``SARA_REQUIRE_TORCH=1`` so that a missing
torch fails there instead of skipping).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from _helpers import csv_rows, torchrun

if TYPE_CHECKING:
    from pathlib import Path

if os.environ.get("SARA_REQUIRE_TORCH") != "1":
    pytest.importorskip("torch")

TRAINING = """\
import datetime, json, sys
import torch.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
from altametris.sara.core import CallbackManager, fit

out = sys.argv[1]
rank = dist.get_rank()
# Rank 0's validation loss keeps improving; rank 1's stops improving after epoch 1, so early stopping (patience 1)
# fires on rank 1 only, at the end of epoch 2.
curves = {0: [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], 1: [1.0, 0.9, 0.95, 0.97, 0.99, 1.0, 1.1, 1.2]}
manager = CallbackManager.from_config({
    "callbacks": [
        {"name": "csv_logger", "params": {"path": out + "/metrics.csv"}},
        {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 1}},
        "history",
    ]
})
state = {"epoch": 0}

def validate():
    return {"val_loss": curves[rank][state["epoch"]]}

class Epochs:
    def __call__(self, epoch):
        state["epoch"] = epoch
        return range(3)

result = fit(manager, epochs=8, data=Epochs(), train_step=lambda batch: {"loss": 1.0 / (batch + 1)}, validate=validate)
csv_logger = manager.callbacks[0]
# Each rank writes its own report: two ranks printing at once can interleave their lines on the shared stdout.
with open(f"{out}/report{rank}.json", "w") as report:
    report.write(json.dumps({
    "rank": rank,
    "last_epoch": result.last_epoch,
    "stopped": result.stopped,
    "stop_reason": result.stop_reason,
    "csv_opened": csv_logger.file_path is not None,
    "history": len(manager.callbacks[2].epochs),
    }))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_a_stop_on_rank_one_stops_both_ranks_at_the_same_epoch_and_only_rank_zero_writes(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAINING)
    result = torchrun(script, str(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["rank"] for report in reports] == [0, 1]
    assert [report["last_epoch"] for report in reports] == [2, 2]
    assert all(report["stopped"] for report in reports)
    assert "val_loss" in reports[1]["stop_reason"]
    assert reports[0]["stop_reason"] == reports[1]["stop_reason"] or "rank" in reports[0]["stop_reason"]
    # Every rank keeps its own history (not rank_zero_only); only rank 0's CSV logger opened a file.
    assert [report["history"] for report in reports] == [3, 3]
    assert [report["csv_opened"] for report in reports] == [True, False]
    assert [row["epoch"] for row in csv_rows(tmp_path / "metrics.csv")] == ["0", "1", "2"]


PREEMPTED = """\
import datetime, json, os, signal, sys
import torch.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
from altametris.sara.core import CallbackManager, fit
from altametris.sara.core.control import Preempted

out, rank = sys.argv[1], dist.get_rank()
manager = CallbackManager.from_config({"callbacks": ["history"]})
seen = {}

def step(item):
    if rank == 1 and item == (1, 1):
        os.kill(os.getpid(), signal.SIGTERM)  # the scheduler reached this rank only
    return {"loss": 1.0}

try:
    fit(manager, epochs=4, data=lambda epoch: [(epoch, batch) for batch in range(3)], train_step=step)
except Preempted as preempted:
    with open(f"{out}/report{rank}.json", "w") as report:
        report.write(json.dumps({
            "code": preempted.code,
            "last_epoch": preempted.last_epoch,
            "history": manager.callbacks[0].epochs,
        }))
    dist.destroy_process_group()
    raise
"""


@pytest.mark.slow
def test_a_sigterm_on_one_rank_preempts_every_rank_at_the_same_batch(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(PREEMPTED)
    result = torchrun(script, str(tmp_path), timeout=180)
    assert all((tmp_path / f"report{rank}.json").exists() for rank in (0, 1)), result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["code"] for report in reports] == [143, 143]
    assert [report["last_epoch"] for report in reports] == [0, 0]  # both dropped epoch 1
    assert [report["history"] for report in reports] == [[0], [0]]
