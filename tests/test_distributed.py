"""Rank detection and agreed decisions, without torch (the torchrun test is tests/test_torchrun.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from altametris.sara.core.distributed import RankInfo, agree_stop, any_rank, rank_info
from altametris.sara.core.exceptions import SaraError


def test_a_plain_process_is_rank_zero_of_one() -> None:
    assert rank_info(environ={}) == RankInfo(0, 1, 0, "single process")


def test_torchrun_variables_give_the_rank() -> None:
    info = rank_info(environ={"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert info == RankInfo(3, 4, 1, "environment")
    assert not info.is_zero
    assert info.distributed


def test_local_rank_defaults_to_the_rank() -> None:
    assert rank_info(environ={"RANK": "1", "WORLD_SIZE": "2"}).local_rank == 1


def test_the_real_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert rank_info().rank == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "one", "WORLD_SIZE": "2"}, r"RANK='one' is not a non-negative whole number"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, r"RANK='-1' is not a non-negative"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, r"WORLD_SIZE='0' is not a positive whole number"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2 is not below WORLD_SIZE=2"),
    ],
)
def test_bad_launcher_variables_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SaraError, match=message):
        rank_info(environ=environ)


def test_without_a_process_group_a_decision_is_its_own() -> None:
    assert any_rank(True) is True
    assert any_rank(False) is False


def test_detecting_the_rank_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from altametris.sara.core.distributed import rank_info\n"
        "rank_info()\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_without_a_process_group_a_stop_is_this_ranks_own_request() -> None:
    from altametris.sara.core.control import TrainingControl

    control = TrainingControl()
    assert agree_stop(control) is False
    control.request_stop("enough", source="me")
    assert agree_stop(control) is True
    assert control.stop_reason == "enough"
