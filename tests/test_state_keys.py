"""State keys an operator can fix: shared keys are refused when a config is checked, and a config item sets its own.

Issue 13, reproduction 3: two ``early_stopping`` items on one monitor (or two ``history``) passed
``sara-callbacks check`` and died at the end of epoch 0 with a ``StateError``; an operator could not set
``state_key`` from a config.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config
from altametris.sara.core.exceptions import ConfigError
from altametris.sara.core.loop import fit
from altametris.sara.core.testing import check_callback

if TYPE_CHECKING:
    from pathlib import Path

TWO_STOPPERS = """\
[[callbacks]]
name = "early_stopping"
params = { monitor = "val_loss", patience = 2 }

[[callbacks]]
name = "history"

[[callbacks]]
name = "early_stopping"
params = { monitor = "val_loss", patience = 5 }
"""


def sara(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.mark.slow
def test_issue13_repro3_check_refuses_two_stateful_items_with_one_state_key_naming_both(tmp_path: Path) -> None:
    (tmp_path / "train.toml").write_text(TWO_STOPPERS)
    result = sara("check", "train.toml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "train.toml: callbacks[2]: 'early_stopping' and callbacks[0] ('early_stopping') share the state_key" in (
        result.stdout
    )
    assert 'state_key = "early_stopping-2"' in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "items",
    [
        [{"name": "early_stopping"}, {"name": "early_stopping", "params": {"patience": 9}}],
        ["history", "history"],
    ],
)
def test_from_config_refuses_shared_state_keys_before_any_training(items: list[Any]) -> None:
    with pytest.raises(ConfigError, match=r"callbacks\[1\]: .* and callbacks\[0\] .* share the state_key"):
        CallbackManager.from_config({"callbacks": items})


def test_a_config_item_sets_its_state_key_and_both_states_survive_a_resume(tmp_path: Path) -> None:
    config = {"callbacks": ["history", {"name": "history", "state_key": "history-2"}]}
    assert check_config(config).ok
    manager = CallbackManager.from_config(config)
    fit(manager, epochs=2, batches_per_epoch=1, train_step=lambda batch: {"loss": 1.0})
    state = manager.state_dict()
    assert sorted(state) == ["History", "history-2", "sara.progress"]  # and the manager's own progress
    resumed = CallbackManager.from_config(config)
    resumed.load_state_dict(state)
    assert [len(callback) for callback in resumed.callbacks] == [2, 2]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "history", "state_key": ""}, r"callbacks\[0\]\.state_key: expected a non-empty printable string"),
        ({"name": "history", "state_key": 3}, r"callbacks\[0\]\.state_key: expected a string, got int"),
        ({"name": "metrics_logger", "state_key": "x"}, r"plugin 'metrics_logger' keeps no state"),
        ({"name": "history", "stat_key": "x"}, r"did you mean 'state_key'"),
    ],
)
def test_a_bad_state_key_item_is_a_config_error_naming_the_place(item: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CallbackManager.from_config({"callbacks": [item]})


def test_a_state_key_of_200_characters_is_accepted_and_one_of_201_refused(tmp_path: Path) -> None:
    longest = "k" * 200
    manager = CallbackManager.from_config({"callbacks": [{"name": "history", "state_key": longest}]})
    assert list(manager.state_dict()) == [longest]
    config = tmp_path / "train.toml"
    config.write_text(f'callbacks = [{{ name = "history", state_key = "{longest}k" }}]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        CallbackManager.from_config(config)
    assert str(caught.value).startswith(
        f"{config}: callbacks[0].state_key: expected a non-empty printable string of at most 200 characters, got 'kkk"
    )
    assert caught.value.key == "callbacks[0].state_key"


class Threshold(BaseCallback):
    """Counts the epochs whose ``monitor`` is below ``limit``; its state_key forgets ``monitor``."""

    def __init__(self, monitor: str = "loss", limit: float = 0.5, name: str = "t") -> None:
        self.monitor = monitor
        self.limit = limit
        self.name = name
        self.count = 0

    def on_epoch_end(self, epoch: int, metrics: Any) -> None:
        self.count += metrics[self.monitor] < self.limit

    @property
    def state_key(self) -> str:
        return f"Threshold{{name={self.name!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state_dict: Any) -> None:
        self.count = state_dict["count"]


def test_the_conformance_check_warns_when_state_key_ignores_a_parameter_that_makes_instances_differ() -> None:
    with pytest.warns(UserWarning, match=r"Threshold.state_key is the same for monitor='loss' and monitor=") as caught:
        check_callback(Threshold)
    assert len(caught) == 1  # not for name (in the key), nor for limit (a number: a resume may tune it)


@pytest.mark.parametrize(
    "plugin",
    ["checkpoint", "csv_logger", "jsonl_logger", "early_stopping", "timer", "history"],
)
def test_the_built_ins_state_keys_pass_the_conformance_check_without_warning(plugin: str) -> None:
    from altametris.sara.core.discovery import find_plugin

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_callback(find_plugin(plugin).load(), plugin_name=plugin)


@pytest.mark.slow
def test_check_shows_the_state_key_an_item_sets(tmp_path: Path) -> None:
    (tmp_path / "train.toml").write_text(TWO_STOPPERS + 'state_key = "slow-stopper"\n')
    result = sara("check", "train.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "early_stopping (state_key=slow-stopper)" in result.stdout
