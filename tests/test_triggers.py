"""Triggers: when a callback runs, declared at registration or in its config item, for any callback."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config, load_callbacks
from altametris.sara.core.exceptions import ConfigError, TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.core.triggers import Trigger

if TYPE_CHECKING:
    from pathlib import Path


class Recorder(BaseCallback):
    """Records every hook call it receives as (hook, epoch, batch)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []
        self.epoch = -1

    def on_train_start(self, **kwargs: Any) -> None:
        self.calls.append(("on_train_start", -1, None))

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self.epoch = epoch
        self.calls.append(("on_epoch_start", epoch, None))

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        self.calls.append(("on_batch_start", self.epoch, batch))

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls.append(("on_batch_end", self.epoch, batch))

    def on_validation_end(self, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls.append(("on_validation_end", self.epoch, None))

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls.append(("on_epoch_end", epoch, None))

    def on_train_end(self, **kwargs: Any) -> None:
        self.calls.append(("on_train_end", -1, None))

    def hooks(self, name: str) -> list[tuple[int, int | None]]:
        return [(epoch, batch) for hook, epoch, batch in self.calls if hook == name]


def _train(manager: CallbackManager, epochs: range, batches: int) -> None:
    """A plain loop over ``epochs``, ``batches`` batches each, calling every hook."""
    for epoch in epochs:
        manager.on_epoch_start(epoch)
        for batch in range(batches):
            manager.on_batch_start(batch)
            manager.on_batch_end(batch, {"loss": 1.0})
        manager.on_validation_start()
        manager.on_validation_end({})
        manager.on_epoch_end(epoch, {})


# -- the trigger and its forms -----------------------------------------------------------------------------------


def test_an_interval_string_is_every_n_batches_or_every_n_epochs() -> None:
    assert Trigger.parse("100ba") == Trigger(every_n_batches=100)
    assert Trigger.parse("2ep") == Trigger(every_n_epochs=2)
    assert Trigger.parse({"every_n_batches": 5, "from_epoch": 1}) == Trigger(every_n_batches=5, from_epoch=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("100 steps", "when: expected an interval such as '100ba'"),
        ({"every_n_batch": 3}, "when: unknown key 'every_n_batch'; did you mean 'every_n_batches'?"),
        ({"every_n_batches": 0}, "when.every_n_batches: expected a positive integer, got 0"),
        ({"every_n_epochs": True}, "when.every_n_epochs: expected a positive integer, got True"),
        ({"from_epoch": -1}, "when.from_epoch: expected a non-negative integer, got -1"),
        ({"from_epoch": 5, "until_epoch": 5}, "when.until_epoch: 5 is not after from_epoch 5"),
        ({"once": "yes"}, "when.once: expected true or false, got 'yes'"),
        ({}, "when: the table is empty"),
        (3, "when: expected a table of every_n_batches"),
    ],
)
def test_a_bad_trigger_is_refused_naming_the_key(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("?", r"\?")):
        Trigger.parse(value)


def test_add_callback_refuses_a_bad_trigger_as_a_training_error() -> None:
    manager = CallbackManager()
    with pytest.raises(TrainingError, match=r"add_callback\(\): when.every_n_batches: expected a positive integer"):
        manager.add_callback(Recorder(), when={"every_n_batches": -2})
    assert len(manager) == 0


def test_the_manager_repr_shows_each_trigger() -> None:
    manager = CallbackManager()
    manager.add_callback(Recorder(), when="100ba")
    manager.register(Recorder(), on_error="warn", when={"every_n_epochs": 2, "from_epoch": 4})
    assert repr(manager) == (
        "CallbackManager(callbacks=[Recorder(when='every 100 batches'), "
        "Recorder(on_error='warn', when='every 2 epochs, from epoch 4')])"
    )


# -- batches and epochs --------------------------------------------------------------------------------------------


def test_every_n_batches_counts_over_epochs_not_within_each() -> None:
    triggered, plain = Recorder(), Recorder()
    manager = CallbackManager([plain])
    manager.add_callback(triggered, when="3ba")
    _train(manager, range(3), batches=4)  # global batches 0..11: the 3rd, 6th, 9th, 12th are 2, 5, 8, 11
    assert triggered.hooks("on_batch_end") == [(0, 2), (1, 1), (2, 0), (2, 3)]
    assert triggered.hooks("on_batch_start") == triggered.hooks("on_batch_end")
    assert triggered.hooks("on_epoch_end") == [(0, None), (1, None), (2, None)]  # a batch trigger leaves epochs be
    assert len(plain.hooks("on_batch_end")) == 12


def test_every_n_epochs_and_an_epoch_window_gate_every_in_epoch_hook() -> None:
    every, window = Recorder(), Recorder()
    manager = CallbackManager()
    manager.add_callback(every, when="2ep")
    manager.add_callback(window, when={"from_epoch": 1, "until_epoch": 3})
    manager.on_train_start()
    _train(manager, range(5), batches=2)
    manager.on_train_end()
    assert every.hooks("on_epoch_start") == [(1, None), (3, None)]
    assert every.hooks("on_batch_end") == [(1, 0), (1, 1), (3, 0), (3, 1)]
    assert every.hooks("on_validation_end") == [(1, None), (3, None)]
    assert window.hooks("on_epoch_end") == [(1, None), (2, None)]
    assert every.hooks("on_train_start") == every.hooks("on_train_end") == [(-1, None)]  # always run


def test_once_runs_at_the_first_firing_only() -> None:
    epoch_once, batch_once = Recorder(), Recorder()
    manager = CallbackManager()
    manager.add_callback(epoch_once, when={"from_epoch": 2, "once": True})
    manager.add_callback(batch_once, when={"every_n_batches": 3, "once": True})
    _train(manager, range(5), batches=2)
    assert epoch_once.hooks("on_epoch_start") == [(2, None)]
    assert epoch_once.hooks("on_batch_end") == [(2, 0), (2, 1)]
    assert batch_once.hooks("on_batch_end") == [(1, 0)]


def test_a_trigger_that_does_not_fire_never_calls_the_callback_between_epochs() -> None:
    sleeping, awake = Recorder(), Recorder()
    manager = CallbackManager([awake])
    manager.add_callback(sleeping, when="1000ba")
    manager.on_epoch_start(0)
    for batch in range(50):
        manager.on_batch_start(batch)
        manager.on_batch_end(batch, {})
    assert sleeping.calls == [("on_epoch_start", 0, None)]
    assert len(awake.hooks("on_batch_end")) == 50


def test_every_n_batches_fires_at_every_nth_batch_over_many_epochs() -> None:
    every = Recorder()
    manager = CallbackManager()
    manager.add_callback(every, when="2ba")
    _train(manager, range(3), batches=3)  # global batches 0..8: it runs at 1, 3, 5, 7
    assert every.hooks("on_batch_end") == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert every.hooks("on_batch_start") == every.hooks("on_batch_end")


def test_the_trigger_counts_leave_the_state_with_the_last_triggered_callback() -> None:
    manager = CallbackManager([Recorder()])
    assert "sara.triggers" not in manager.state_dict()
    manager.add_callback(Recorder(), when="2ba")
    assert manager.state_dict()["sara.triggers"] == {"batches": 0, "epoch": 0, "once": {}}
    manager.remove_callback(manager.callbacks[1])
    assert "sara.triggers" not in manager.state_dict()


# -- resume and ranks --------------------------------------------------------------------------------------------


def test_a_resumed_training_goes_on_counting_batches_and_remembers_once() -> None:
    first, once = Recorder(), Recorder()
    manager = CallbackManager()
    manager.add_callback(first, when="3ba")
    manager.add_callback(once, when={"every_n_epochs": 1, "once": True})
    _train(manager, range(2), batches=4)  # 8 batches: fires at global 2 and 5
    saved = manager.state_dict()
    assert saved["sara.triggers"]["batches"] == 8

    resumed, once_again = Recorder(), Recorder()
    manager = CallbackManager()
    manager.add_callback(resumed, when="3ba")
    manager.add_callback(once_again, when={"every_n_epochs": 1, "once": True})
    manager.load_state_dict(saved)
    _train(manager, range(2, 4), batches=4)  # global 8..15: fires at 8 (epoch 2, batch 0), 11 (2, 3), 14 (3, 2)
    assert resumed.hooks("on_batch_end") == [(2, 0), (2, 3), (3, 2)]
    assert once_again.calls == []  # it ran in epoch 0, before the resume


def test_saved_trigger_counts_that_are_malformed_are_refused() -> None:
    manager = CallbackManager()
    manager.add_callback(Recorder(), when="3ba")
    with pytest.raises(Exception, match="the saved trigger counts are malformed"):
        manager.load_state_dict({"sara.triggers": {"batches": -1}})


def test_fit_runs_triggers_across_epochs_and_through_a_resume() -> None:
    recorder = Recorder()
    manager = CallbackManager()
    manager.add_callback(recorder, when="4ba")

    def step(batch: object) -> dict[str, float]:
        return {"loss": 1.0}

    fit(manager, epochs=2, train_step=step, data=range(3))  # global batches 0..5
    assert recorder.hooks("on_batch_end") == [(1, 0)]  # global batch 3
    saved = manager.state_dict()
    resumed = Recorder()
    manager = CallbackManager()
    manager.add_callback(resumed, when="4ba")
    manager.load_state_dict(saved)
    fit(manager, epochs=4, train_step=step, data=range(3), start_epoch=2)
    assert resumed.hooks("on_batch_end") == [(2, 1), (3, 2)]  # global 7 and 11


def test_a_rank_zero_only_callback_keeps_its_trigger_on_rank_zero_and_is_left_out_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RankZero(Recorder):
        rank_zero_only = True

    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        everywhere, rank_zero = Recorder(), RankZero()
        manager = CallbackManager()
        manager.add_callback(everywhere, when="2ba")
        manager.add_callback(rank_zero, when="2ba")
        manager.on_train_start()
        _train(manager, range(2), batches=3)
        assert everywhere.hooks("on_batch_end") == [(0, 1), (1, 0), (1, 2)]  # every rank counts alike
        assert rank_zero.hooks("on_batch_end") == ([(0, 1), (1, 0), (1, 2)] if rank == "0" else [])


# -- the config --------------------------------------------------------------------------------------------------


def test_a_config_item_sets_the_trigger(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text('[[callbacks]]\nname = "history"\nwhen = { every_n_batches = 10, from_epoch = 2 }\n')
    manager = CallbackManager.from_config(config)
    assert repr(manager) == "CallbackManager(callbacks=[History(when='every 10 batches, from epoch 2')])"
    assert load_callbacks({"callbacks": [{"name": "history", "when": "2ep"}]})[0]._sara_trigger == Trigger(
        every_n_epochs=2
    )


def test_a_bad_trigger_in_a_config_names_the_file_item_and_key(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text('callbacks = ["timer", { name = "history", when = { every_n_epochs = 0 } }]\n')
    report = check_config(config)
    assert len(report.problems) == 1
    assert str(report.problems[0]).endswith(
        "train.toml: callbacks[1].when.every_n_epochs: expected a positive integer, got 0"
    )


def test_check_shows_each_items_trigger(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text('callbacks = [{ name = "history", when = "100ba" }, "timer"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "check", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK, 2 callbacks: history (when: every 100 batches), timer" in result.stdout


def test_show_says_that_any_item_may_set_a_trigger() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "show", "history"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert 'when: every hook, unless its config item sets when = "100ba"' in result.stdout


def test_once_counts_from_where_the_training_is_not_from_registration() -> None:
    every_batch = Recorder()
    manager = CallbackManager()
    manager.add_callback(every_batch, when={"every_n_batches": 1, "once": True})
    for batch in range(3):  # a bare loop: no on_epoch_start
        manager.on_batch_start(batch)
        manager.on_batch_end(batch, {})
    assert every_batch.hooks("on_batch_end") == [(-1, 0)]

    resumed = Recorder()
    manager = CallbackManager()
    manager.add_callback(resumed, when={"once": True})  # registered at epoch 0 in its mind, resumed at epoch 3
    _train(manager, range(3, 5), batches=1)
    assert resumed.hooks("on_epoch_start") == [(3, None)]
