"""What both trackers share, true with or without their libraries installed: nothing happens before the training
starts, a missing library is an error that names the extra, and a tracker's failure never ends the training."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.loop import fit

if TYPE_CHECKING:
    from pathlib import Path

TRACKERS = {"mlflow_logger": ("mlflow", "mlflow"), "tensorboard_logger": ("tensorboardX", "tensorboard")}


@pytest.mark.parametrize("name", TRACKERS)
def test_building_a_tracker_imports_nothing_and_touches_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = TRACKERS[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # importing it would fail
    (callback,) = CallbackManager.from_config({"callbacks": [name]}).callbacks
    assert callback.on_error == "warn"
    assert callback.rank_zero_only is True
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", TRACKERS)
def test_a_missing_library_is_an_error_naming_the_extra_to_install(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, extra = TRACKERS[name]
    monkeypatch.setitem(sys.modules, module, None)
    manager = CallbackManager.from_config({"callbacks": [{"name": name, "on_error": "raise"}]})
    with pytest.raises(TrainingError) as caught:
        manager.on_train_start(output_dir=tmp_path)
    message = str(caught.value.__cause__)
    assert f"{name} needs the {module!r} package, which is not installed" in message
    assert f"pip install 'sara-callbacks[{extra}]'" in message


@pytest.mark.parametrize("name", TRACKERS)
def test_by_default_a_missing_library_is_a_warning_and_the_training_goes_on(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module, extra = TRACKERS[name]
    monkeypatch.setitem(sys.modules, module, None)
    manager = CallbackManager.from_config({"callbacks": [name, "history"]})
    with caplog.at_level(logging.WARNING):
        result = fit(
            manager, epochs=2, batches_per_epoch=3, train_step=lambda batch: {"loss": 1.0}, output_dir=tmp_path
        )
    assert result.epochs_run == 2
    assert f"sara-callbacks[{extra}]" in caplog.text
    assert len(manager.callbacks[1].state_dict()["epochs"]) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("mlflow_logger", {"log_every_n_batches": -1}, "log_every_n_batches"),
        ("mlflow_logger", {"experiment": ""}, "experiment"),
        ("mlflow_logger", {"tags": {"team": 3}}, "tags"),
        ("mlflow_logger", {"flush_timeout": "30"}, "flush_timeout"),
        ("tensorboard_logger", {"log_dir": "../outside"}, "log_dir"),
        ("tensorboard_logger", {"max_pending": 0}, "max_pending"),
        ("tensorboard_logger", {"log_every_n_batches": True}, "log_every_n_batches"),
    ],
)
def test_a_bad_parameter_names_the_plugin_and_the_parameter(name: str, params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        CallbackManager.from_config({"callbacks": [{"name": name, "params": params}]})
    assert (caught.value.plugin, caught.value.parameter) == (name, parameter)


def test_the_state_is_the_global_step_and_for_mlflow_the_run() -> None:
    mlflow_logger, tensorboard_logger = CallbackManager.from_config({"callbacks": list(TRACKERS)}).callbacks
    assert mlflow_logger.state_dict() == {"step": 0, "run_id": None}
    mlflow_logger.load_state_dict({"step": 40, "run_id": "abc"})
    assert (mlflow_logger.step, mlflow_logger.run_id) == (40, "abc")  # type: ignore[attr-defined]
    tensorboard_logger.load_state_dict({"step": 40})
    assert tensorboard_logger.state_dict() == {"step": 40}
    with pytest.raises(PluginParameterError, match="state_dict\\['step'\\]"):
        tensorboard_logger.load_state_dict({"step": "40"})
