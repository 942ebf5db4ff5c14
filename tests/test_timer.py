"""timer: epoch and total wall time and throughput into the metrics, a time budget, elapsed time across resumes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from altametris.sara.core.control import StopTraining, TrainingControl
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.testing import check_callback, simulate
from altametris.sara.plugins import timer as timer_module
from altametris.sara.plugins.timer import Timer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timer_module, "_clock", fake)
    return fake


def test_timings_go_into_the_epoch_metrics(clock: Clock) -> None:
    timer = Timer()
    timer.on_train_start()
    timer.on_epoch_start(0)
    for batch in range(4):
        clock.now += 0.5
        timer.on_batch_end(batch, {})
    clock.now += 1.0  # validation
    metrics: dict[str, float] = {"loss": 0.1}
    timer.on_epoch_end(0, metrics)
    assert metrics == {"loss": 0.1, "epoch_seconds": 3.0, "elapsed_seconds": 3.0, "batches_per_second": 2.0}


def test_elapsed_time_accumulates_over_epochs_and_an_epoch_without_batches_has_no_throughput(clock: Clock) -> None:
    timer = Timer()
    timer.on_train_start()
    for epoch in range(2):
        timer.on_epoch_start(epoch)
        clock.now += 2.0
        metrics: dict[str, float] = {}
        timer.on_epoch_end(epoch, metrics)
    assert metrics == {"epoch_seconds": 2.0, "elapsed_seconds": 4.0}


def test_the_budget_stops_the_training_after_the_batch_that_spends_it(clock: Clock) -> None:
    timer, control = Timer(budget_seconds=1.5), TrainingControl()
    timer.on_train_start(control=control)
    timer.on_epoch_start(0)
    clock.now += 1.0
    timer.on_batch_end(0, {}, control=control)
    assert not control.should_stop
    clock.now += 1.0
    timer.on_batch_end(1, {}, control=control)
    assert control.stop_reason == "the time budget of 1.5 s is spent (2.0 s elapsed)"
    assert control.stop_source == "timer"
    timer.on_epoch_end(0, {}, control=control)
    assert len(control.requests) == 1


def test_without_a_control_object_the_budget_raises_stop_training(clock: Clock) -> None:
    timer = Timer(budget_seconds=1)
    timer.on_train_start()
    timer.on_epoch_start(0)
    clock.now += 5
    with pytest.raises(StopTraining, match="time budget"):
        timer.on_epoch_end(0, {})


def test_elapsed_time_and_budget_survive_a_resume(clock: Clock) -> None:
    first = Timer(budget_seconds=10)
    first.on_train_start()
    clock.now += 6.0
    first.on_train_end()
    saved = json.loads(json.dumps(first.state_dict()))
    assert saved == {"elapsed_seconds": 6.0}

    resumed, control = Timer(budget_seconds=10), TrainingControl()
    resumed.load_state_dict(saved)
    resumed.on_train_start(control=control)
    resumed.on_epoch_start(3)
    clock.now += 3.0
    metrics: dict[str, float] = {}
    resumed.on_epoch_end(3, metrics, control=control)
    assert metrics["elapsed_seconds"] == 9.0
    assert not control.should_stop
    resumed.on_epoch_start(4)
    clock.now += 1.0
    resumed.on_epoch_end(4, {}, control=control)
    assert control.should_stop


def test_after_a_resume_the_batch_budget_counts_the_time_already_spent(clock: Clock) -> None:
    resumed, control = Timer(budget_seconds=10), TrainingControl()
    resumed.load_state_dict({"elapsed_seconds": 6.0})
    resumed.on_train_start(control=control)
    resumed.on_epoch_start(3)
    clock.now += 3.5
    resumed.on_batch_end(0, {}, control=control)
    assert not control.should_stop
    clock.now += 1.0
    resumed.on_batch_end(1, {}, control=control)  # 6 s before the resume and 4.5 s since: the budget is spent
    assert control.stop_reason == "the time budget of 10 s is spent (10.5 s elapsed)"


def test_state_loaded_after_the_start_counts_from_the_load(clock: Clock) -> None:
    timer, control = Timer(budget_seconds=10), TrainingControl()
    timer.on_train_start(control=control)
    clock.now += 100.0  # a long setup before the state arrives: not part of the resumed training
    timer.load_state_dict({"elapsed_seconds": 9.0})
    timer.on_epoch_start(0)
    clock.now += 0.5
    timer.on_batch_end(0, {}, control=control)
    assert not control.should_stop
    clock.now += 0.5
    timer.on_batch_end(1, {}, control=control)
    assert control.stop_reason == "the time budget of 10 s is spent (10.0 s elapsed)"


def test_the_clock_stops_on_failure(clock: Clock) -> None:
    timer = Timer()
    timer.on_train_start()
    clock.now += 2.0
    timer.on_exception(RuntimeError("boom"))
    clock.now += 100.0
    assert timer.elapsed_seconds == 2.0


@pytest.mark.parametrize("budget", [0, -1, "60", True, float("inf")])
def test_a_budget_that_is_not_a_positive_number_is_refused(budget: Any) -> None:
    with pytest.raises(PluginParameterError) as caught:
        Timer(budget_seconds=budget)
    assert (caught.value.plugin, caught.value.parameter) == ("timer", "budget_seconds")


def test_the_budget_stops_a_simulated_training_after_the_batch_that_spends_it(clock: Clock) -> None:
    def one_second_per_batch(epoch: int, batch: int) -> dict[str, float]:
        clock.now += 1.0
        return {"loss": 1.0}

    recording = simulate(Timer(budget_seconds=4.5), epochs=3, batches=3, metrics=one_second_per_batch)
    assert [(event.epoch, event.batch) for event in recording.of("on_batch_end")][-1] == (1, 1)
    assert [event.epoch for event in recording.of("on_epoch_end")] == [0, 1]  # the epoch still ends
    assert recording.stop_reason == "the time budget of 4.5 s is spent (5.0 s elapsed)"
    check_callback(recording.callbacks[0])  # the elapsed time survives a JSON round trip
