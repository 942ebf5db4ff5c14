"""jsonl_logger: one strict JSON object per line, per epoch (optionally per batch), flushed per line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.plugins.jsonl_logger import JSONLLogger

if TYPE_CHECKING:
    from pathlib import Path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Scalar:
    """Like a NumPy or PyTorch scalar: not a float, but has ``__float__``."""

    def __float__(self) -> float:
        return 0.5


class Tag:
    def __str__(self) -> str:
        return "a tag"


def test_one_line_per_epoch_and_per_batch_when_asked(tmp_path: Path) -> None:
    manager = CallbackManager([JSONLLogger(path=tmp_path / "m.jsonl", per_batch=True)])
    manager.on_train_start()
    manager.on_epoch_start(0)
    manager.on_batch_end(0, {"loss": 2.0})
    manager.on_epoch_end(0, {"loss": 2.0, "val_loss": 1.0})
    manager.on_train_end()
    assert lines(tmp_path / "m.jsonl") == [
        {"epoch": 0, "batch": 0, "loss": 2.0},
        {"epoch": 0, "loss": 2.0, "val_loss": 1.0},
    ]


def test_output_is_strict_json_nan_and_inf_become_null_and_odd_values_are_converted(tmp_path: Path) -> None:
    logger = JSONLLogger(path=tmp_path / "m.jsonl")
    logger.on_train_start()
    logger.on_epoch_end(0, {"loss": float("nan"), "grad": float("inf"), "lr": Scalar(), "tag": Tag()})
    logger.on_train_end()
    text = (tmp_path / "m.jsonl").read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    row = json.loads(text)
    assert (row["loss"], row["grad"], row["lr"]) == (None, None, 0.5)
    assert row["tag"] == "a tag"


def test_append_continues_and_cuts_a_line_left_half_written(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 0, "loss": 1.0}\n{"epoch": 1, "lo')
    logger = JSONLLogger(path=path, append=True)
    logger.on_train_start()
    logger.on_epoch_end(1, {"loss": 0.5})
    logger.on_train_end()
    assert lines(path) == [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}]


def test_without_append_the_file_starts_anew(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 7}\n')
    logger = JSONLLogger(path=path)
    logger.on_train_start()
    logger.on_train_end()
    assert path.read_text() == ""


def test_a_relative_path_resolves_in_the_output_dir(tmp_path: Path) -> None:
    logger = JSONLLogger(path="m.jsonl")
    logger.on_train_start(output_dir=str(tmp_path))
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_exception(RuntimeError("boom"))
    assert logger.closed
    assert lines(tmp_path / "m.jsonl") == [{"epoch": 0, "loss": 1.0}]


def test_building_it_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    JSONLLogger()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"path": None}, "path"),
        ({"per_batch": "true"}, "per_batch"),
        ({"append": 0}, "append"),
        ({"fsync": "no"}, "fsync"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        JSONLLogger(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("jsonl_logger", parameter)
