"""The eleven built-ins are ordinary plugins: listed by the command line, enabled by name from a config."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import PluginParameterError

if TYPE_CHECKING:
    from pathlib import Path

BUILTINS = {
    "metrics_logger": "MetricsLogger",
    "progress_bar": "ProgressBar",
    "csv_logger": "CSVLogger",
    "jsonl_logger": "JSONLLogger",
    "early_stopping": "EarlyStopping",
    "nan_guard": "NaNGuard",
    "timer": "Timer",
    "history": "History",
    "checkpoint": "Checkpoint",
    "mlflow_logger": "MLflowLogger",
    "tensorboard_logger": "TensorBoardLogger",
}


def test_every_builtin_is_listed_by_the_command_line() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    targets = {item["name"]: item["target"] for item in json.loads(listed.stdout)}
    for name, cls in BUILTINS.items():
        assert targets[name] == f"altametris.sara.plugins.{name}:{cls}"


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_is_enabled_by_name_from_a_config_without_touching_the_disk(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manager = CallbackManager.from_config({"callbacks": [name]})
    (callback,) = manager.callbacks
    assert type(callback).__name__ == BUILTINS[name]
    assert type(callback).__module__ == f"altametris.sara.plugins.{name}"
    assert isinstance(callback, BaseCallback)
    assert list(tmp_path.iterdir()) == []  # files are opened at on_train_start, never when building


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_documents_itself(name: str) -> None:
    callback = CallbackManager.from_config({"callbacks": [name]}).callbacks[0]
    doc = type(callback).__doc__ or ""
    assert len(doc.splitlines()) > 3
    assert "Example:" in doc or name == "history" or ">>>" in doc
    assert repr(callback).startswith(BUILTINS[name])


def test_parameters_come_from_the_config_in_order(tmp_path: Path) -> None:
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {"name": "early_stopping", "params": {"monitor": "val_accuracy", "mode": "max", "patience": 5}},
                {"name": "csv_logger", "params": {"path": str(tmp_path / "m.csv"), "per_batch": True}},
                "history",
            ]
        }
    )
    stopper, logger, _ = manager.callbacks
    assert (stopper.monitor, stopper.mode, stopper.patience) == ("val_accuracy", "max", 5)  # type: ignore[attr-defined]
    assert logger.per_batch is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("early_stopping", {"patience": "3"}, "patience"),
        ("checkpoint", {"save_top_k": 0}, "save_top_k"),
        ("nan_guard", {"action": "explode"}, "action"),
        ("timer", {"budget_seconds": -5}, "budget_seconds"),
    ],
)
def test_a_bad_parameter_in_a_config_names_the_plugin_and_the_parameter(
    name: str, params: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(PluginParameterError) as caught:
        CallbackManager.from_config({"callbacks": [{"name": name, "params": params}]})
    assert caught.value.plugin == name
    assert caught.value.parameter == parameter


def test_the_stateful_builtins_state_goes_through_json() -> None:
    manager = CallbackManager.from_config({"callbacks": ["early_stopping", "timer", "history", "checkpoint"]})
    state = manager.state_dict()
    assert len(state) == 4
    manager.load_state_dict(json.loads(json.dumps(state)))


@pytest.mark.parametrize(
    ("plugin", "params"),
    [
        ("early_stopping", {"mode": "x" * 100_000}),
        ("checkpoint", {"mode": "\x1b[2J" * 1000}),
        ("checkpoint", {"filename": "a/" * 50_000}),
        ("checkpoint", {"filename": "{" * 49_999, "save_top_k": 1}),
        ("metrics_logger", {"level": "x" * 100_000}),
        ("nan_guard", {"action": "x" * 100_000}),
        ("progress_bar", {"backend": "x" * 100_000}),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_a_refused_value_is_shown_cut_and_escaped(plugin: str, params: dict[str, Any]) -> None:
    from altametris.sara.core.discovery import create_callback

    with pytest.raises(PluginParameterError) as caught:
        create_callback(plugin, params)
    assert len(str(caught.value)) < 600
    assert "\x1b" not in str(caught.value)
