"""What every bridge shares (``altametris.sara.integrations._bridge``): no framework needed."""

from __future__ import annotations

import importlib
import subprocess
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core import CallbackManager, StateError, TrainingError
from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import StopTraining
from altametris.sara.core.testing import EventRecorder
from altametris.sara.integrations import _bridge
from altametris.sara.integrations._bridge import Bridge, to_float, validation_metrics

if TYPE_CHECKING:
    from pathlib import Path


def test_importing_the_package_imports_no_framework() -> None:
    frameworks = "{'torch', 'lightning', 'transformers', 'keras'}"
    code = f"import sys, altametris.sara.integrations; print(sorted({frameworks} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0.5, 0.5), (True, None), ("1", None), (None, None), (Decimal("0.25"), None), ([1.0], None)],
)
def test_to_float_takes_numbers_only(value: object, expected: float | None) -> None:
    assert to_float(value) == expected


def test_to_float_takes_numpy_scalars_and_one_element_arrays() -> None:
    numpy = pytest.importorskip("numpy")
    assert to_float(numpy.float32(0.5)) == 0.5
    assert type(to_float(numpy.array([[2.0]]))) is float
    assert to_float(numpy.array([1.0, 2.0])) is None


def test_validation_metrics_are_named_val() -> None:
    assert validation_metrics({"eval_loss": 1, "val_acc": 0.5, "f1": 0.25}, strip="eval_") == {
        "val_loss": 1.0,
        "val_acc": 0.5,
        "val_f1": 0.25,
    }


def test_a_source_that_is_no_manager_and_no_config_is_refused() -> None:
    with pytest.raises(TrainingError, match="expects a CallbackManager, a config mapping or the path"):
        Bridge(42, framework="lightning")  # type: ignore[arg-type]


def test_a_config_source_builds_the_manager(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text('callbacks = ["history"]\n')
    assert [type(c).__name__ for c in Bridge(config, framework="lightning").manager.callbacks] == ["History"]


def _drive(bridge: Bridge, epochs: int, validate: bool = True) -> None:
    bridge.start(model="m", epochs=epochs, trainer=None)
    for epoch in range(epochs):
        bridge.epoch_start(epoch)
        for batch in range(2):
            bridge.batch_start(batch)
            bridge.batch_end(batch, {"loss": float(batch)})
        if validate:
            bridge.validation_start()
            bridge.validation_end({"val_loss": 1.0 / (epoch + 1)})
        bridge.epoch_end(epoch)
    bridge.end()


def test_the_epoch_metrics_are_the_batch_means_and_this_epochs_validation_and_none_context_is_dropped() -> None:
    recorder = EventRecorder()
    bridge = Bridge(CallbackManager([recorder]), framework="lightning")
    _drive(bridge, 2)
    assert [e.arguments["metrics"] for e in recorder.events if e.hook == "on_epoch_end"] == [
        {"loss": 0.5, "val_loss": 1.0},
        {"loss": 0.5, "val_loss": 0.5},
    ]
    start_context = ["control", "epochs", "global_step", "model", "rank", "start_epoch", "world_size"]
    assert sorted(recorder.events[0].context) == start_context  # trainer=None is dropped
    assert recorder.events[-1].context["metrics"] == {"loss": 0.5, "val_loss": 0.5}  # on_train_end gets them


def test_stop_training_raised_by_a_callback_becomes_a_stop_request() -> None:
    class Stop(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            raise StopTraining("enough", source="me")

    bridge = Bridge(CallbackManager([Stop()]), framework="lightning")
    bridge.start()
    bridge.epoch_start(0)
    assert not bridge.should_stop()
    bridge.batch_end(0, {})
    assert bridge.should_stop()
    assert (bridge.control.stop_reason, bridge.control.stop_source) == ("enough", "me")


def test_the_state_is_the_snapshot_after_the_last_epoch_end_with_what_a_resume_inside_an_epoch_needs() -> None:
    bridge = Bridge(CallbackManager.from_config({"callbacks": ["history"]}), framework="lightning")
    bridge.start()
    bridge.epoch_start(0)
    bridge.batch_end(0, {"loss": 2.0})
    bridge.epoch_end(0)
    bridge.epoch_start(1)
    bridge.batch_end(0, {"loss": 4.0})
    bridge.validation_end({"val_loss": 0.5})
    state = bridge.state()
    assert state["epoch"] == 0
    assert state["callbacks"]["History"]["epochs"] == [0]
    assert state["pending"] == {
        "epoch": 1,
        "sums": {"loss": 4.0},
        "counts": {"loss": 1},
        "validation": {"val_loss": 0.5},
    }

    recorder = EventRecorder()
    resumed = Bridge(CallbackManager.from_config({"callbacks": ["history"]}), framework="lightning")
    resumed.manager.add_callback(recorder)
    resumed.load(state, where="a test")
    resumed.start()
    resumed.reenter(1)
    resumed.epoch_end(1)
    assert recorder.hooks == ["on_checkpoint_load", "on_train_start", "on_epoch_start", "on_validation_start",
                              "on_validation_end", "on_epoch_end"]  # fmt: skip
    assert resumed.manager.callbacks[0].metrics == [{"loss": 2.0}, {"loss": 4.0, "val_loss": 0.5}]  # type: ignore[attr-defined]


def test_a_state_that_is_not_a_bridges_is_a_clear_error() -> None:
    bridge = Bridge(CallbackManager(), framework="lightning")
    with pytest.raises(StateError, match=r"the SARA state in ckpt.pt is not what SaraCallback saves"):
        bridge.load({"History": {}}, where="ckpt.pt")


def test_on_exception_runs_once_and_only_for_a_running_training() -> None:
    recorder = EventRecorder()
    bridge = Bridge(CallbackManager([recorder]), framework="lightning")
    bridge.start()
    bridge.exception(RuntimeError("the framework's exception hook"))

    def fail_again() -> None:
        with bridge.guard():
            raise RuntimeError("the same error, seen again by the wrapped call")

    with pytest.raises(RuntimeError):
        fail_again()
    assert recorder.hooks == ["on_train_start", "on_exception"]


@pytest.mark.parametrize("module", ["lightning", "transformers", "keras"])
def test_a_missing_framework_says_which_extra_to_install(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == module or name.startswith(f"{module}.")] or [module]:
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail as if the framework were not installed
    monkeypatch.delitem(sys.modules, f"altametris.sara.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'sara-callbacks\[{module}\]'") as caught:
        importlib.import_module(f"altametris.sara.integrations.{module}")
    assert isinstance(caught.value, _bridge.MissingFrameworkError)
