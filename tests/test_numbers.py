"""Numbers as users have them: the reference loop averages anything real-valued, and refuses the rest by name.

Issue 13, reproduction 6: ``train_step=lambda b: {"loss": np.float64(0.5)}`` gave the epoch metrics ``{}`` (the
mean counted exact ``float``/``int`` only), so the CSV row's ``loss`` was empty and ``nan_guard`` failed.
"""

from __future__ import annotations

import decimal
import fractions
import os
import re
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.loop import fit


class Keep(BaseCallback):
    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, metrics: Any) -> None:
        self.epochs.append(dict(metrics))


class MyFloat(float):
    pass


class MyInt(int):
    pass


class Scalar:
    """A framework's scalar: a number through ``__float__`` only."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return float(self.value)


def epoch_metrics(steps: list[dict[str, Any]], validation: dict[str, Any] | None = None) -> dict[str, Any]:
    keep = Keep()
    fit(
        CallbackManager([keep]),
        epochs=1,
        data=steps,
        train_step=lambda step: step,
        validate=None if validation is None else lambda: validation,
    )
    return keep.epochs[0]


@pytest.mark.parametrize(
    "make",
    [MyFloat, MyInt, Scalar, fractions.Fraction, decimal.Decimal],
    ids=["float subclass", "int subclass", "__float__", "Fraction", "Decimal"],
)
def test_real_valued_metrics_are_averaged_as_floats(make: Any) -> None:
    metrics = epoch_metrics([{"loss": make(1)}, {"loss": make(2)}], validation={"val_loss": make(3)})
    assert metrics == {"loss": 1.5, "val_loss": 3.0}
    assert all(type(value) is float for value in metrics.values())


def test_issue13_repro6_numpy_scalars_and_0d_arrays_are_averaged_and_nan_guard_sees_the_loss() -> None:
    import numpy as np  # a test dependency: the reproduction must run, never be skipped

    metrics = epoch_metrics(
        [{"loss": np.float64(0.5), "acc": np.float32(0.25)}, {"loss": np.array(1.5), "acc": np.int64(1)}]
    )
    assert metrics == {"loss": 1.0, "acc": 0.625}
    manager = CallbackManager.from_config({"callbacks": [{"name": "nan_guard", "params": {"monitor": "loss"}}]})
    result = fit(manager, epochs=2, batches_per_epoch=2, train_step=lambda b: {"loss": np.float64(0.5)})
    assert result.metrics == {"loss": 0.5}
    assert not result.stopped


@pytest.mark.skipif(
    not os.environ.get("SARA_REQUIRE_TORCH") and not __import__("importlib").util.find_spec("torch"),
    reason="torch is installed in tox -e distributed",
)
def test_one_element_tensors_are_averaged() -> None:
    torch = pytest.importorskip("torch")
    metrics = epoch_metrics([{"loss": torch.tensor(0.5)}, {"loss": torch.tensor([1.5])}])
    assert metrics == {"loss": 1.0}


@pytest.mark.parametrize(
    ("value", "found"),
    [("0.5", "str '0.5'"), (True, "bool True"), ([0.5, 1.0], "list [0.5, 1.0]"), (1j, "complex 1j")],
)
def test_a_metric_that_is_no_number_is_an_error_naming_the_key(value: object, found: str) -> None:
    with pytest.raises(
        TrainingError, match=rf"the metric 'loss' that train_step returned is {re.escape(found)}, not a number"
    ):
        epoch_metrics([{"loss": value}])


def test_none_means_not_measured_in_that_batch() -> None:
    assert epoch_metrics([{"loss": 1.0, "acc": None}, {"loss": 3.0, "acc": 0.5}]) == {"loss": 2.0, "acc": 0.5}


@pytest.mark.parametrize(("result", "found"), [([("loss", 0.5)], "list"), (0.5, "float"), ("loss", "str")])
def test_a_train_step_that_returns_no_mapping_is_a_training_error_naming_train_step_and_the_type(
    result: object, found: str
) -> None:
    with pytest.raises(TrainingError, match=rf"fit\(\): train_step returned {found} .*; it must return a mapping"):
        fit(CallbackManager([]), epochs=1, batches_per_epoch=1, train_step=lambda b: result)


def test_a_validate_that_returns_no_mapping_is_a_training_error_naming_validate() -> None:
    with pytest.raises(TrainingError, match=r"fit\(\): validate returned float 0\.5"):
        fit(CallbackManager([]), epochs=1, batches_per_epoch=1, train_step=lambda b: None, validate=lambda: 0.5)
