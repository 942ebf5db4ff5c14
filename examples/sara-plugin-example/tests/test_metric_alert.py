"""MetricAlert: what it does, that it fits the callback contract, and that SARA finds it by name once installed.

The testing kit of ``sara-callbacks`` does the work: the ``sara_simulate`` fixture runs the callback through a
simulated training (the reference loop, made-up metrics), and ``check_callback`` checks it against the contract.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.testing import check_callback
from sara_plugin_example import MetricAlert

if TYPE_CHECKING:
    from collections.abc import Callable

    from altametris.sara.core.testing import Recording


def losses(*values: float) -> dict[str, Any]:
    """``simulate`` options for one batch per epoch whose ``loss`` is ``values[epoch]``, without validation."""
    return {
        "epochs": len(values),
        "batches": 1,
        "metrics": lambda epoch, batch: {"loss": values[epoch]},
        "validate": False,
    }


def test_it_alerts_once_per_crossing(sara_simulate: Callable[..., Recording]) -> None:
    alert = MetricAlert(monitor="loss", threshold=1.0)
    sara_simulate(alert, **losses(0.5, 1.5, 2.0, 0.7, 1.2))
    assert alert.alerts == [(1, "loss", 1.5), (4, "loss", 1.2)]


def test_below_watches_a_metric_that_must_stay_high(sara_simulate: Callable[..., Recording]) -> None:
    alert = MetricAlert(monitor="loss", threshold=1.0, direction="below")
    sara_simulate(alert, **losses(2.0, 0.5, 0.4, 3.0))
    assert alert.alerts == [(1, "loss", 0.5)]


def test_every_batch_also_watches_batch_metrics(sara_simulate: Callable[..., Recording]) -> None:
    def spike(epoch: int, batch: int) -> dict[str, float]:
        return {"loss": 2.0 if batch == 0 else 0.1}  # the epoch's mean, 0.575, stays below the threshold

    alert = MetricAlert(threshold=1.0, every_batch=True)
    sara_simulate(alert, epochs=1, batches=4, metrics=spike, validate=False)
    assert alert.alerts == [(0, "loss", 2.0)]
    quiet = MetricAlert(threshold=1.0)
    sara_simulate(quiet, epochs=1, batches=4, metrics=spike, validate=False)
    assert quiet.alerts == []


def test_a_missing_metric_is_ignored(sara_simulate: Callable[..., Recording]) -> None:
    alert = MetricAlert(monitor="val_accuracy")
    sara_simulate(alert, **losses(5.0))
    assert alert.alerts == []


def test_it_logs_a_warning_with_its_label(
    sara_simulate: Callable[..., Recording], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sara_plugin_example"):
        sara_simulate(MetricAlert(threshold=1.0, label="too high"), **losses(3.0))
    assert "[too high] epoch 0: loss = 3" in caplog.text


def test_a_new_training_forgets_the_alerts_of_the_last_one(sara_simulate: Callable[..., Recording]) -> None:
    alert = MetricAlert(threshold=1.0)
    sara_simulate(alert, **losses(3.0))
    sara_simulate(alert, **losses(0.5))
    assert alert.alerts == []


def test_the_constructor_refuses_what_types_cannot_say() -> None:
    with pytest.raises(PluginParameterError, match="monitor"):
        MetricAlert(monitor="")
    with pytest.raises(PluginParameterError, match="finite"):
        MetricAlert(threshold=float("nan"))


def test_it_fits_the_callback_contract() -> None:
    check_callback(MetricAlert)  # hooks, parameters as `sara-callbacks show` reads them, state


def test_its_state_survives_a_resume(sara_simulate: Callable[..., Recording]) -> None:
    first = MetricAlert(threshold=1.0)
    sara_simulate(first, **losses(2.0, 0.5, 3.0))
    check_callback(first)  # a state with alerts in it survives state_dict -> JSON -> load_state_dict
    second = MetricAlert(threshold=1.0)
    second.load_state_dict(first.state_dict())
    assert second.alerts == first.alerts == [(0, "loss", 2.0), (2, "loss", 3.0)]


def test_the_docstring_example_runs() -> None:
    import doctest

    from sara_plugin_example import metric_alert

    results = doctest.testmod(metric_alert, optionflags=doctest.ELLIPSIS)
    assert (results.failed, results.attempted > 0) == (0, True)


def _installed() -> bool:
    from altametris.sara.core import discovery

    return any(info.name == "metric_alert" for info in discovery.available_plugins())


needs_install = pytest.mark.skipif(
    not _installed(), reason="install the distribution first (pip install -e .): SARA reads its metadata"
)


@needs_install
def test_it_is_registered_under_its_name() -> None:
    check_callback(MetricAlert, plugin_name="metric_alert")


@needs_install
def test_sara_finds_it_by_name_with_its_parameters() -> None:
    manager = CallbackManager.from_config(
        {"callbacks": [{"name": "metric_alert", "params": {"monitor": "val_loss", "threshold": 0.5}}]}
    )
    (alert,) = manager.callbacks
    assert isinstance(alert, MetricAlert)
    assert (alert.monitor, alert.threshold) == ("val_loss", 0.5)


@needs_install
def test_sara_refuses_a_threshold_given_as_a_string() -> None:
    with pytest.raises(PluginParameterError, match="threshold"):
        CallbackManager.from_config({"callbacks": [{"name": "metric_alert", "params": {"threshold": "0.5"}}]})
