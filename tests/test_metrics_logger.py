"""metrics_logger: epoch (and every N batches) metrics through logging."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.control import TrainingControl
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.metrics_logger import MetricsLogger

NAME = "altametris.sara.plugins.metrics_logger"


def test_it_logs_every_epoch_and_every_nth_batch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=NAME)
    fit(
        CallbackManager([MetricsLogger(every_n_batches=2)]),
        epochs=2,
        batches_per_epoch=3,
        train_step=lambda batch: {"loss": 1.0 / (batch + 1)},
        validate=lambda: {"val_loss": 0.123456},
    )
    assert caplog.messages == [
        "epoch 0, batch 1: loss=0.5",
        "epoch 0: loss=0.6111 val_loss=0.1235",
        "epoch 1, batch 1: loss=0.5",
        "epoch 1: loss=0.6111 val_loss=0.1235",
    ]
    assert {record.levelno for record in caplog.records} == {logging.INFO}


def test_level_logger_and_digits_are_configurable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="my.training")
    MetricsLogger(level="debug", logger="my.training", digits=2).on_epoch_end(0, {"loss": 0.123456, "steps": 3})
    MetricsLogger(level=logging.WARNING, logger="my.training").on_epoch_end(1, {})
    assert [(record.name, record.levelno, record.getMessage()) for record in caplog.records] == [
        ("my.training", logging.DEBUG, "epoch 0: loss=0.12 steps=3"),
        ("my.training", logging.WARNING, "epoch 1: "),
    ]


def test_nothing_is_logged_below_the_loggers_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=NAME)
    MetricsLogger().on_epoch_end(0, {"loss": 1.0})
    assert caplog.records == []


def test_the_end_of_an_early_stopped_training_says_who_stopped_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=NAME)
    control = TrainingControl()
    control.request_stop("patience ran out", source="early_stopping")
    MetricsLogger().on_train_end(control=control)
    MetricsLogger().on_train_end(control=TrainingControl())
    assert caplog.messages == ["training stopped early by early_stopping: patience ran out"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"every_n_batches": "2"}, "every_n_batches"),
        ({"every_n_batches": -1}, "every_n_batches"),
        ({"level": "LOUD"}, "level"),
        ({"level": True}, "level"),
        ({"level": 2.5}, "level"),
        ({"logger": ""}, "logger"),
        ({"digits": 0}, "digits"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        MetricsLogger(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("metrics_logger", parameter)
