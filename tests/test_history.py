"""history: every epoch's metrics in memory; the records survive a resume."""

from __future__ import annotations

import json

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import StateError, TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.history import History
from altametris.sara.plugins.timer import Timer


def test_it_records_a_copy_of_every_epochs_metrics_as_the_callbacks_before_it_left_them() -> None:
    history = History()
    fit(
        CallbackManager([Timer(), history]),
        epochs=3,
        batches_per_epoch=2,
        train_step=lambda batch: {"loss": 1.0 + batch},
        validate=lambda: {"val_loss": 0.5},
    )
    assert history.epochs == [0, 1, 2]
    assert len(history) == 3
    assert history.column("loss") == [1.5, 1.5, 1.5]
    assert "epoch_seconds" in history.keys()  # noqa: SIM118 - a History is no dict
    history.metrics[0]["loss"] = 99.0
    assert history.last["loss"] == 1.5


def test_a_column_has_none_where_an_epoch_lacks_the_metric_and_an_unknown_one_is_an_error() -> None:
    history = History()
    history.on_epoch_end(0, {"loss": 1.0})
    history.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})
    assert history.column("val_loss") == [None, 0.7]
    assert history.keys() == ["loss", "val_loss"]
    with pytest.raises(
        TrainingError, match=r"no epoch recorded the metric 'accuracy'; recorded: \['loss', 'val_loss'\]"
    ):
        history.column("accuracy")


def test_an_empty_history() -> None:
    history = History()
    assert (history.last, history.keys(), history.column("loss")) == ({}, [], [])


def test_the_records_survive_a_json_round_trip() -> None:
    history = History()
    history.on_epoch_end(0, {"loss": 1.0})
    resumed = History()
    resumed.load_state_dict(json.loads(json.dumps(history.state_dict())))
    resumed.on_epoch_end(1, {"loss": 0.5})
    assert resumed.epochs == [0, 1]
    assert resumed.column("loss") == [1.0, 0.5]


def test_a_malformed_state_is_refused_by_the_manager() -> None:
    manager = CallbackManager([History()])
    with pytest.raises(StateError, match="could not load its state"):
        manager.load_state_dict({"History": {"epochs": [0, 1], "metrics": [{}]}})
