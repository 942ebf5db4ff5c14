"""MetricAlert: what it does, and that SARA finds it by name once the distribution is installed."""

from __future__ import annotations

import logging

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError
from sara_plugin_example import MetricAlert


def _run(manager: CallbackManager, losses: list[float]) -> None:
    manager.on_train_start()
    for epoch, loss in enumerate(losses):
        manager.on_epoch_start(epoch)
        manager.on_batch_end(0, {"loss": loss})
        manager.on_epoch_end(epoch, {"loss": loss})
    manager.on_train_end()


def test_it_alerts_once_per_crossing() -> None:
    alert = MetricAlert(monitor="loss", threshold=1.0)
    _run(CallbackManager([alert]), [0.5, 1.5, 2.0, 0.7, 1.2])
    assert alert.alerts == [(1, "loss", 1.5), (4, "loss", 1.2)]


def test_below_watches_a_metric_that_must_stay_high() -> None:
    alert = MetricAlert(monitor="loss", threshold=1.0, direction="below")
    _run(CallbackManager([alert]), [2.0, 0.5, 0.4, 3.0])
    assert alert.alerts == [(1, "loss", 0.5)]


def test_every_batch_also_watches_batch_metrics() -> None:
    alert = MetricAlert(threshold=1.0, every_batch=True)
    manager = CallbackManager([alert])
    manager.on_epoch_start(0)
    manager.on_batch_end(0, {"loss": 5.0})
    assert alert.alerts == [(0, "loss", 5.0)]


def test_a_missing_metric_is_ignored() -> None:
    alert = MetricAlert(monitor="val_loss")
    _run(CallbackManager([alert]), [5.0])
    assert alert.alerts == []


def test_it_logs_a_warning_with_its_label(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sara_plugin_example"):
        _run(CallbackManager([MetricAlert(threshold=1.0, label="too high")]), [3.0])
    assert "[too high] epoch 0: loss = 3" in caplog.text


def test_the_constructor_refuses_what_types_cannot_say() -> None:
    with pytest.raises(PluginParameterError, match="monitor"):
        MetricAlert(monitor="")
    with pytest.raises(PluginParameterError, match="finite"):
        MetricAlert(threshold=float("nan"))


def test_its_state_survives_a_resume() -> None:
    first = MetricAlert(threshold=1.0)
    _run(CallbackManager([first]), [2.0])
    second = MetricAlert(threshold=1.0)
    second.load_state_dict(first.state_dict())
    assert second.alerts == first.alerts


def test_the_docstring_example_runs() -> None:
    import doctest

    from sara_plugin_example import metric_alert

    results = doctest.testmod(metric_alert, optionflags=doctest.ELLIPSIS)
    assert (results.failed, results.attempted > 0) == (0, True)


def _installed() -> bool:
    from altametris.sara.core import discovery

    return any(info.name == "metric_alert" for info in discovery.available_plugins())


@pytest.mark.skipif(
    not _installed(), reason="install the distribution first (pip install -e .): SARA reads its metadata"
)
def test_sara_finds_it_by_name_with_its_parameters() -> None:
    manager = CallbackManager.from_config(
        {"callbacks": [{"name": "metric_alert", "params": {"monitor": "val_loss", "threshold": 0.5}}]}
    )
    (alert,) = manager.callbacks
    assert isinstance(alert, MetricAlert)
    assert (alert.monitor, alert.threshold) == ("val_loss", 0.5)


@pytest.mark.skipif(
    not _installed(), reason="install the distribution first (pip install -e .): SARA reads its metadata"
)
def test_sara_refuses_a_threshold_given_as_a_string() -> None:
    with pytest.raises(PluginParameterError, match="threshold"):
        CallbackManager.from_config({"callbacks": [{"name": "metric_alert", "params": {"threshold": "0.5"}}]})
