"""The PyTorch example (``examples/pytorch_resume.py``) runs, and a run killed in the middle of an epoch, resumed
from the torch checkpoint, ends as an uninterrupted run does: same rows, same stop, same best files, same weights.

Runs where torch is installed (``tox -e distributed``, which sets ``SARA_REQUIRE_TORCH`` so that it cannot skip).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import TIMER_COLUMNS, csv_rows

if os.environ.get("SARA_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch", reason="torch is installed in tox -e distributed")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name == "nt", reason="needs SIGKILL")]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytorch_resume.py"


def example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=300, check=False
    )


def rows(folder: Path) -> list[dict[str, str]]:
    return csv_rows(folder / "metrics.csv", drop=TIMER_COLUMNS)


def test_a_killed_run_resumed_from_the_torch_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    done = example("--output", str(tmp_path / "uninterrupted"))
    assert done.returncode == 0, done.stderr
    assert "did not improve" in done.stdout  # early stopping ends it: the resumed run must stop at the same epoch
    expected = rows(tmp_path / "uninterrupted")
    assert len(expected) >= 6

    run = tmp_path / "run"
    killed = example("--output", str(run), "--kill-at", "4", "7")  # in the middle of epoch 4
    assert killed.returncode == -9, killed.stderr
    assert [row["epoch"] for row in rows(run)] == ["0", "1", "2", "3"]
    resumed = example("--output", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout

    assert rows(run) == expected
    assert resumed.stdout.split("done: ")[1].split(";")[0] == done.stdout.split("done: ")[1].split(";")[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        p.name for p in (tmp_path / "uninterrupted" / "checkpoints").iterdir()
    )
    final, reference = torch.load(run / "last.pt"), torch.load(tmp_path / "uninterrupted" / "last.pt")
    assert final["epoch"] == reference["epoch"]
    assert all(torch.equal(final["model"][key], reference["model"][key]) for key in reference["model"])
    assert not list(run.rglob("*.tmp"))
