"""Rank detection and agreed decisions, without torch (the torchrun test is tests/test_torchrun.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
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


class _Writer(BaseCallback):
    rank_zero_only = True

    def __init__(self) -> None:
        self.calls = 0

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: object) -> None:
        self.calls += 1


class _Decider(_Writer):
    rank_zero_only = False


@pytest.mark.parametrize(("rank", "expected"), [("0", [1, 1]), ("1", [0, 1])])
def test_the_manager_calls_rank_zero_only_callbacks_on_rank_zero_only(
    monkeypatch: pytest.MonkeyPatch, rank: str, expected: list[int]
) -> None:
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    writer, decider = _Writer(), _Decider()
    CallbackManager([writer, decider]).on_epoch_end(0, {})
    assert [writer.calls, decider.calls] == expected


class _EveryHook(BaseCallback):
    """Records each hook it receives; its arguments are optional, so a call that lacks some still reaches it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_train_start(self, **kwargs: object) -> None:
        self.seen.append("on_train_start")

    def on_epoch_end(self, epoch: int = 0, metrics: object = None, **kwargs: object) -> None:
        self.seen.append("on_epoch_end")

    def on_exception(self, error: object = None, **kwargs: object) -> None:
        self.seen.append("on_exception")


class _EveryHookOnRankZero(_EveryHook):
    rank_zero_only = True


DISPATCH_PATHS = {
    "hook method": lambda manager: manager.on_epoch_end(0, {}),
    "hook method, context keywords": lambda manager: manager.on_epoch_end(0, {}, model=None),
    "by name, positional": lambda manager: manager._execute_callback_hook("on_epoch_end", 0, {}),
    "by name, keywords": lambda manager: manager._execute_callback_hook("on_epoch_end", epoch=0, metrics={}),
    "by name, an argument missing": lambda manager: manager._execute_callback_hook("on_epoch_end", epoch=0),
    "by name, no argument but a context keyword": lambda manager: manager._execute_callback_hook(
        "on_epoch_end", model=None
    ),
    "on_train_start": lambda manager: manager.on_train_start(),
    "on_train_start by name": lambda manager: manager._execute_callback_hook("on_train_start"),
    "on_exception (cleanup)": lambda manager: manager.on_exception(RuntimeError("boom")),
    "on_exception by name, error missing": lambda manager: manager._execute_callback_hook("on_exception"),
}


@pytest.mark.parametrize("path", DISPATCH_PATHS)
@pytest.mark.parametrize(("rank", "rank_zero_calls"), [("0", 1), ("1", 0)])
def test_rank_zero_only_holds_on_every_dispatch_path(
    monkeypatch: pytest.MonkeyPatch, path: str, rank: str, rank_zero_calls: int
) -> None:
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    everywhere, rank_zero = _EveryHook(), _EveryHookOnRankZero()
    manager = CallbackManager([rank_zero, everywhere])
    DISPATCH_PATHS[path](manager)
    assert len(everywhere.seen) == 1, everywhere.seen
    assert len(rank_zero.seen) == rank_zero_calls, f"rank {rank}, {path}: {rank_zero.seen}"


def test_file_writing_and_printing_built_ins_are_rank_zero_only() -> None:
    from altametris.sara.core.discovery import load_plugin

    flags = {
        name: load_plugin(name).rank_zero_only
        for name in (
            "csv_logger",
            "jsonl_logger",
            "checkpoint",
            "progress_bar",
            "metrics_logger",
            "early_stopping",
            "nan_guard",
            "timer",
            "history",
        )
    }
    assert [name for name, flag in flags.items() if flag] == [
        "csv_logger",
        "jsonl_logger",
        "checkpoint",
        "progress_bar",
        "metrics_logger",
    ]
