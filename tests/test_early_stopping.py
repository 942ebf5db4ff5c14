"""early_stopping: stops when the monitored metric stops improving; its counters survive a resume."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.control import StopTraining, TrainingControl
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.testing import check_callback, simulate
from altametris.sara.plugins.early_stopping import EarlyStopping


def stop_epoch(stopper: EarlyStopping, values: list[float], key: str = "val_loss") -> int | None:
    """The epoch after which ``stopper`` asks to stop, feeding it ``values``."""
    control = TrainingControl()
    for epoch, value in enumerate(values):
        stopper.on_epoch_end(epoch, {key: value}, control=control)
        if control.should_stop:
            return epoch
    return None


def test_it_stops_after_patience_epochs_without_improvement() -> None:
    assert stop_epoch(EarlyStopping(patience=2), [1.0, 0.8, 0.9, 0.85, 0.5]) == 3


def test_an_improvement_resets_the_count() -> None:
    assert stop_epoch(EarlyStopping(patience=2), [1.0, 1.1, 0.9, 1.0, 0.8, 0.9, 0.95]) == 6


def test_min_delta_ignores_small_improvements() -> None:
    assert stop_epoch(EarlyStopping(patience=2, min_delta=0.1), [1.0, 0.95, 0.91, 0.5]) == 2
    assert stop_epoch(EarlyStopping(patience=2, min_delta=0.0), [1.0, 0.95, 0.91, 0.5]) is None


def test_mode_max_watches_a_metric_that_should_grow() -> None:
    stopper = EarlyStopping(monitor="val_accuracy", mode="max", patience=1)
    assert stop_epoch(stopper, [0.5, 0.7, 0.6], key="val_accuracy") == 2


def test_patience_zero_stops_at_the_first_epoch_without_improvement() -> None:
    assert stop_epoch(EarlyStopping(patience=0), [1.0, 0.5, 0.6]) == 2


def test_nan_is_no_improvement() -> None:
    assert stop_epoch(EarlyStopping(patience=1), [1.0, math.nan]) == 1


def test_the_reason_names_the_metric_the_best_value_and_its_epoch() -> None:
    control = TrainingControl()
    stopper = EarlyStopping(patience=1, min_delta=0.01)
    stopper.on_epoch_end(0, {"val_loss": 0.5}, control=control)
    stopper.on_epoch_end(1, {"val_loss": 0.6}, control=control)
    assert control.stop_source == "early_stopping"
    assert control.stop_reason == (
        "'val_loss' did not improve by more than 0.01 for 1 epoch (best 0.5 at epoch 0); stopping after epoch 1"
    )
    assert stopper.stopped_epoch == 1


def test_without_a_control_object_it_raises_stop_training() -> None:
    stopper = EarlyStopping(patience=0)
    stopper.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.raises(StopTraining, match="did not improve") as caught:
        stopper.on_epoch_end(1, {"val_loss": 2.0})
    assert caught.value.source == "early_stopping"


def test_a_missing_monitor_names_the_available_keys_and_suggests_the_closest() -> None:
    manager = CallbackManager([EarlyStopping(monitor="val_los")])
    with pytest.raises(TrainingError) as caught:
        manager.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    cause = caught.value.__cause__
    assert isinstance(cause, TrainingError)
    assert str(cause).startswith(
        "early_stopping could not find the monitored key 'val_los' in the epoch metrics; "
        "available: ['loss', 'val_loss']. HINT: did you mean 'val_loss'?"
    )
    assert "(epoch 0)" in str(caught.value)


def test_a_monitored_value_that_is_no_number_is_an_error() -> None:
    with pytest.raises(TrainingError, match="should be a number"):
        EarlyStopping().on_epoch_end(0, {"val_loss": "low"})  # type: ignore[dict-item]


def test_the_state_survives_a_json_round_trip_and_the_count_goes_on() -> None:
    first = EarlyStopping(patience=3)
    assert stop_epoch(first, [1.0, 0.5, 0.6, 0.7]) is None
    saved = json.loads(json.dumps(first.state_dict()))
    assert saved == {"best": 0.5, "best_epoch": 1, "wait": 2, "patience": 3}
    resumed = EarlyStopping(patience=3)
    resumed.load_state_dict(saved)
    control = TrainingControl()
    resumed.on_epoch_end(4, {"val_loss": 0.8}, control=control)
    assert control.should_stop


def test_two_instances_watching_two_metrics_keep_two_states() -> None:
    losses, accuracy = EarlyStopping(monitor="val_loss"), EarlyStopping(monitor="val_accuracy", mode="max")
    assert losses.state_key != accuracy.state_key
    manager = CallbackManager([losses, accuracy])
    manager.on_epoch_end(0, {"val_loss": 0.5, "val_accuracy": 0.9}, control=TrainingControl())
    state = manager.state_dict()
    assert sorted(state) == [
        "EarlyStopping{monitor='val_accuracy', mode='max'}",
        "EarlyStopping{monitor='val_loss', mode='min'}",
    ]


def test_a_new_training_forgets_the_previous_stop_but_not_the_best_value() -> None:
    stopper = EarlyStopping(patience=0)
    stop_epoch(stopper, [1.0, 2.0])
    stopper.on_train_start()
    assert stopper.stopped_epoch is None
    assert stopper.best == 1.0


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"monitor": ""}, "monitor"),
        ({"monitor": 3}, "monitor"),
        ({"mode": "avg"}, "mode"),
        ({"patience": "3"}, "patience"),
        ({"patience": -1}, "patience"),
        ({"patience": 2.0}, "patience"),
        ({"patience": True}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"min_delta": "0"}, "min_delta"),
        ({"min_delta": math.inf}, "min_delta"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        EarlyStopping(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("early_stopping", parameter)
    assert f"parameter {parameter!r}" in str(caught.value)


# -- through a simulated training (the testing kit) -------------------------------------------------------------------


def test_a_simulated_training_stops_after_the_epoch_where_patience_runs_out() -> None:
    losses = [1.0, 0.8, 0.9, 0.85, 0.7, 0.6]
    recording = simulate(EarlyStopping(patience=2), epochs=6, batches=2, validation=lambda e: {"val_loss": losses[e]})
    assert [event.epoch for event in recording.of("on_epoch_end")] == [0, 1, 2, 3]
    assert recording.hooks[-1] == "on_train_end"
    assert recording.control.stop_source == "early_stopping"
    assert recording.stop_reason == (
        "'val_loss' did not improve for 2 epochs (best 0.8 at epoch 1); stopping after epoch 3"
    )


def test_its_counters_fit_the_callback_contract_after_a_training() -> None:
    stopper = simulate(EarlyStopping(patience=5), epochs=3, validation={"val_loss": 1.0}).callbacks[0]
    assert stopper.state_dict() == {"best": 1.0, "best_epoch": 0, "wait": 2, "patience": 5}
    check_callback(stopper)
    check_callback(EarlyStopping, plugin_name="early_stopping")


def test_it_asks_for_one_stop_not_one_at_every_later_epoch() -> None:
    """A trainer that runs on after the request (one that checks the control late, say) gets no second request."""
    stopper = EarlyStopping(patience=1)
    control = TrainingControl()
    stopper.on_train_start(control=control)
    for epoch, value in enumerate([0.5, 0.6, 0.7, 0.8, 0.9]):
        stopper.on_epoch_start(epoch)
        stopper.on_validation_end({"val_loss": value})
        stopper.on_epoch_end(epoch, {"val_loss": value}, control=control)
    assert len(control.requests) == 1
    assert stopper.stopped_epoch == 1


def test_a_resume_whose_remaining_epochs_have_no_validation_ends_without_error() -> None:
    """load_state_dict restores that the monitored key was seen: else on_train_end would say it never was."""
    first = EarlyStopping(patience=5)
    first.on_train_start()
    for epoch, value in enumerate([0.5, 0.4]):
        first.on_epoch_start(epoch)
        first.on_validation_end({"val_loss": value})
        first.on_epoch_end(epoch, {"loss": 1.0, "val_loss": value})
    resumed = EarlyStopping(patience=5)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    resumed.on_train_start()
    resumed.on_epoch_start(2)  # validation every other epoch: this one has none
    resumed.on_epoch_end(2, {"loss": 0.9})
    resumed.on_train_end()
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (0.4, 1, 0)
