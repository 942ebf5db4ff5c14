"""Stopping a training is not a failure: a control object carries the request, or a BaseException does."""

from __future__ import annotations

from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import StopRequest, StopTraining, TrainingControl, stop_training
from altametris.sara.core.exceptions import SaraError


def test_a_new_control_asks_for_nothing() -> None:
    control = TrainingControl()
    assert control.should_stop is False
    assert control.stop_reason is None
    assert control.stop_source is None
    assert control.requests == []


def test_the_first_reason_wins_and_later_ones_are_kept() -> None:
    control = TrainingControl()
    control.request_stop("patience ran out", source="early_stopping")
    control.request_stop("budget spent", source="timer")
    control.request_stop("no source")
    assert control.should_stop is True
    assert control.stop_reason == "patience ran out"
    assert control.stop_source == "early_stopping"
    assert control.requests == [
        StopRequest("patience ran out", "early_stopping"),
        StopRequest("budget spent", "timer"),
        StopRequest("no source", None),
    ]


def test_setting_should_stop_directly_stops_without_a_reason() -> None:
    control = TrainingControl()
    control.should_stop = True
    assert control.should_stop
    assert control.stop_reason is None


def test_repr_shows_the_decision() -> None:
    control = TrainingControl()
    control.request_stop("why")
    assert repr(control) == "TrainingControl(should_stop=True, stop_reason='why')"


def test_stop_training_is_a_base_exception_not_an_error() -> None:
    assert issubclass(StopTraining, BaseException)
    assert not issubclass(StopTraining, Exception)
    assert not issubclass(StopTraining, SaraError)
    stop = StopTraining("enough", source="me")
    assert (stop.reason, stop.source, str(stop)) == ("enough", "me", "enough")


def test_stop_training_helper_uses_the_control_when_given() -> None:
    control = TrainingControl()
    stop_training(control, "enough", source="me")
    assert control.requests == [StopRequest("enough", "me")]


def test_stop_training_helper_raises_without_a_control() -> None:
    with pytest.raises(StopTraining) as caught:
        stop_training(None, "enough", source="me")
    assert (caught.value.reason, caught.value.source) == ("enough", "me")


def test_the_manager_lets_stop_training_through_unwrapped() -> None:
    class Stopper(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            raise StopTraining("done", source="stopper")

    class After(BaseCallback):
        called = False

        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            After.called = True

    manager = CallbackManager([Stopper(), After()])
    with pytest.raises(StopTraining, match="done"):
        manager.on_epoch_end(0, {})
    assert After.called is False  # the reason to prefer the control object
