"""nan_guard: stops (or fails) the training on NaN, infinity or a value above a threshold, naming the batch."""

from __future__ import annotations

import math
from typing import Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.control import StopTraining, TrainingControl
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.nan_guard import NaNGuard


def test_a_nan_batch_loss_stops_the_training_and_names_the_epoch_and_the_batch() -> None:
    losses = iter([1.0, 0.5, math.nan, 0.4, 0.3, 0.2])
    result = fit(
        CallbackManager([NaNGuard()]), epochs=3, batches_per_epoch=2, train_step=lambda batch: {"loss": next(losses)}
    )
    assert result.stopped
    assert result.stop_reason == "'loss' is nan at epoch 1, batch 0"
    assert result.control.stop_source == "nan_guard"
    assert result.last_epoch == 1  # the epoch completes, so that the loggers record it


def test_an_infinite_epoch_value_stops_too() -> None:
    control = TrainingControl()
    NaNGuard(check_batches=False).on_epoch_end(3, {"loss": -math.inf}, control=control)
    assert control.stop_reason == "'loss' is -inf at the end of epoch 3"


def test_a_value_above_the_threshold_stops() -> None:
    control = TrainingControl()
    guard = NaNGuard(monitor="grad_norm", threshold=100)
    guard.on_epoch_start(0)
    guard.on_batch_end(4, {"grad_norm": 100.0}, control=control)
    assert not control.should_stop
    guard.on_batch_end(5, {"grad_norm": 1e6}, control=control)
    assert control.stop_reason == "'grad_norm' = 1e+06 is above the threshold 100 at epoch 0, batch 5"


def test_it_trips_once() -> None:
    control = TrainingControl()
    guard = NaNGuard()
    guard.on_batch_end(0, {"loss": math.nan}, control=control)
    guard.on_batch_end(1, {"loss": math.nan}, control=control)
    assert len(control.requests) == 1


def test_action_raise_fails_the_training_with_a_training_error() -> None:
    manager = CallbackManager([NaNGuard(action="raise")])
    manager.on_epoch_start(2)
    with pytest.raises(TrainingError) as caught:
        manager.on_batch_end(7, {"loss": math.nan})
    cause = caught.value.__cause__
    assert isinstance(cause, TrainingError)
    assert str(cause) == "nan_guard: 'loss' is nan at epoch 2, batch 7"
    assert (cause.epoch, cause.batch) == (2, 7)


def test_without_a_control_object_it_raises_stop_training() -> None:
    with pytest.raises(StopTraining, match="is nan"):
        NaNGuard().on_batch_end(0, {"loss": math.nan})


def test_check_batches_false_only_checks_epochs() -> None:
    control = TrainingControl()
    NaNGuard(check_batches=False).on_batch_end(0, {"accuracy": math.nan}, control=control)
    assert not control.should_stop


def test_a_missing_monitor_is_an_error_listing_the_available_keys() -> None:
    with pytest.raises(TrainingError, match=r"could not find the monitored key 'loss' .* available: \['los'\]"):
        NaNGuard().on_batch_end(0, {"los": 1.0})


def test_a_new_training_re_arms_it() -> None:
    guard, control = NaNGuard(), TrainingControl()
    guard.on_batch_end(0, {"loss": math.nan}, control=control)
    guard.on_train_start()
    guard.on_batch_end(0, {"loss": math.nan}, control=control)
    assert len(control.requests) == 2


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"monitor": ""}, "monitor"),
        ({"threshold": "10"}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"action": "warn"}, "action"),
        ({"check_batches": 1}, "check_batches"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        NaNGuard(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("nan_guard", parameter)
