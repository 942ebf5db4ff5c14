"""The Keras bridge: SARA callbacks enabled by name inside a real Keras 3 ``model.fit`` (backend torch).

Skipped where Keras is not installed, except in tox env ``bridges`` (``SARA_REQUIRE_BRIDGES=1``).
"""

from __future__ import annotations

import json
import os
import signal
import zipfile
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import csv_rows, events_of

os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
    pytest.importorskip("torch")
    pytest.importorskip("keras")

import keras
import numpy as np
from altametris.sara.core import CallbackManager, TrainingControl
from altametris.sara.core.control import Preempted
from altametris.sara.core.testing import EventRecorder
from altametris.sara.integrations.keras import STATE_MEMBER, SaraCallback

if TYPE_CHECKING:
    from pathlib import Path

# Keras's own saving of torch-backed variables, under numpy 2.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

CURVE = [0.9, 0.7, 0.6, 0.65, 0.66, 0.5, 0.4, 0.3]


class MLP(keras.Sequential):  # type: ignore[misc]
    """A 2-layer MLP whose ``train_step`` can fail at a chosen optimizer step."""

    crash_at: int | None = None
    sigterm_at: int | None = None

    def train_step(self, data: Any) -> Any:
        if self.crash_at is not None and int(self.optimizer.iterations) == self.crash_at:
            raise RuntimeError("the training step failed")
        if self.sigterm_at is not None and int(self.optimizer.iterations) == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends before it kills the job
        return super().train_step(data)


class Curve(keras.callbacks.Callback):  # type: ignore[misc]
    """Replaces val_loss by :data:`CURVE` (before SARA sees the logs), for a known stopping epoch."""

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["loss"] = CURVE[self.epoch]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and "val_loss" in logs:
            logs["val_loss"] = CURVE[epoch]


def train(callback: SaraCallback, *, epochs: int = 4, crash_at: int | None = None, extra: list[Any] | None = None,
          sigterm_at: int | None = None, **options: Any) -> MLP:  # fmt: skip
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model = MLP([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.crash_at, model.sigterm_at = crash_at, sigterm_at
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    with callback.guard():
        model.fit(x, x.sum(1, keepdims=True), batch_size=8, epochs=epochs, validation_data=(x, x.sum(1, keepdims=True)),
                  callbacks=[Curve(), callback, *(extra or [])], verbose=0, shuffle=False, **options)  # fmt: skip
    return model


def test_the_hooks_run_in_hookspec_order_with_this_epochs_validation_only(tmp_path: Path) -> None:
    recorder = EventRecorder()
    callback = SaraCallback(CallbackManager([recorder]), output_dir=tmp_path)
    train(callback, epochs=3, validation_freq=2)
    epoch = ["on_epoch_start", *["on_batch_start", "on_batch_end"] * 4]
    validation = ["on_validation_start", *["on_validation_batch_start", "on_validation_batch_end"] * 4,
                  "on_validation_end"]  # fmt: skip
    assert recorder.hooks == ["on_train_start", *epoch, "on_epoch_end", *epoch, *validation, "on_epoch_end", *epoch,
                              "on_epoch_end", "on_train_end"]  # fmt: skip
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1, 2]
    ends = [event.arguments["metrics"] for event in events_of(recorder, "on_epoch_end")]
    assert [sorted(metrics) for metrics in ends] == [["loss"], ["loss", "val_loss"], ["loss"]]
    assert ends[1]["val_loss"] == pytest.approx(0.7)
    assert all(type(value) is float for metrics in ends for value in metrics.values())
    context = recorder.events[0].context
    assert sorted(context) == ["control", "epochs", "global_step", "model", "num_batches", "output_dir", "rank",
                               "save_checkpoint", "start_epoch", "trainer", "world_size"]  # fmt: skip
    assert (context["start_epoch"], context["global_step"], context["rank"], context["world_size"]) == (0, 0, 0, 1)
    assert [event.context["global_step"] for event in events_of(recorder, "on_batch_end")] == list(range(12))
    assert (context["epochs"], context["num_batches"], context["output_dir"]) == (3, 4, tmp_path)
    assert isinstance(context["control"], TrainingControl)


def test_early_stopping_by_name_stops_fit_at_the_right_epoch(tmp_path: Path) -> None:
    recorder = EventRecorder()
    callback = SaraCallback({"callbacks": [{"name": "early_stopping", "params": {"patience": 2}}]})
    callback.manager.add_callback(recorder)
    train(callback, epochs=8)
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")][-1] == 4
    assert callback.control.stop_source == "early_stopping"


def test_csv_logger_and_checkpoint_write_through_model_save(tmp_path: Path) -> None:
    config = {
        "callbacks": [
            {"name": "csv_logger", "params": {"path": "metrics.csv"}},
            {"name": "checkpoint", "params": {"dirpath": "ckpt", "save_top_k": 2, "filename": "e{epoch}.keras"}},
        ]
    }
    train(SaraCallback(config, output_dir=tmp_path), epochs=4)
    table = csv_rows(tmp_path / "metrics.csv")
    assert [(row["epoch"], float(row["val_loss"])) for row in table] == [
        (str(i), pytest.approx(CURVE[i])) for i in range(4)
    ]
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == ["e2.keras", "e3.keras"]
    assert STATE_MEMBER in zipfile.ZipFile(tmp_path / "ckpt" / "e2.keras").namelist()
    loaded = keras.saving.load_model(tmp_path / "ckpt" / "e2.keras", compile=False, custom_objects={"MLP": MLP})
    assert isinstance(loaded, MLP)


def test_a_crash_in_the_training_step_reaches_on_exception_through_guard(tmp_path: Path) -> None:
    recorder = EventRecorder()
    manager = CallbackManager.from_config({"callbacks": [{"name": "csv_logger", "params": {"path": "m.csv"}}]})
    manager.add_callback(recorder)
    with pytest.raises(RuntimeError, match="the training step failed"):
        train(SaraCallback(manager, output_dir=tmp_path), epochs=3, crash_at=5)
    assert recorder.hooks[-1] == "on_exception"
    assert (recorder.events[-1].epoch, recorder.events[-1].batch) == (1, 1)
    assert manager.callbacks[0]._file is None  # closed
    assert [row["epoch"] for row in csv_rows(tmp_path / "m.csv")] == ["0"]


CONFIG = {
    "callbacks": [
        {"name": "csv_logger", "params": {"path": "metrics.csv", "append": True}},
        {"name": "early_stopping", "params": {"patience": 2}},
        "history",
    ]
}


def test_a_run_interrupted_and_resumed_with_backup_and_restore_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = SaraCallback(CONFIG, output_dir=tmp_path / "whole")
    train(whole, epochs=8)
    folder = tmp_path / "interrupted"
    backup = keras.callbacks.BackupAndRestore(str(folder / "backup"))
    state = folder / "backup-sara.json"
    with pytest.raises(RuntimeError):
        train(SaraCallback(CONFIG, output_dir=folder, state_path=state), epochs=8, crash_at=13, extra=[backup])
    assert sorted(json.loads(state.read_text())["states"]) == ["1", "2"]  # crashed in epoch 3
    resumed = SaraCallback(CONFIG, output_dir=folder, state_path=state)
    train(resumed, epochs=8, extra=[keras.callbacks.BackupAndRestore(str(folder / "backup"))])

    def history(callback: SaraCallback) -> list[Any]:
        kept = callback.manager.callbacks[2]
        return list(zip(kept.epochs, kept.metrics))  # type: ignore[attr-defined]

    got, expected = history(resumed), history(whole)
    assert [epoch for epoch, _ in got] == [epoch for epoch, _ in expected] == [0, 1, 2, 3, 4]
    assert [m for _, m in got] == [pytest.approx(m, rel=1e-4) for _, m in expected]
    assert resumed.control.stop_reason == whole.control.stop_reason
    keep = ("epoch", "val_loss")
    assert [[row[k] for k in keep] for row in csv_rows(folder / "metrics.csv")] == [
        [row[k] for k in keep] for row in csv_rows(tmp_path / "whole" / "metrics.csv")
    ]


def test_the_example_plugin_of_a_real_distribution_runs_by_name(tmp_path: Path, example_plugin: str) -> None:
    config = {"callbacks": [{"name": "metric_alert", "params": {"monitor": "val_loss", "threshold": 0.62,
                                                                "direction": "below"}}]}  # fmt: skip
    callback = SaraCallback(config)
    train(callback, epochs=4)
    alert = callback.manager.callbacks[0]
    assert type(alert).__module__ == "sara_plugin_example.metric_alert"
    assert [(epoch, metric) for epoch, metric, _ in alert.alerts] == [(2, "val_loss")]  # type: ignore[attr-defined]


def test_a_callback_overriding_a_hook_keras_never_calls_is_warned_about_once_at_the_start(tmp_path: Path) -> None:
    from altametris.sara.core.base_callback import BaseCallback
    from altametris.sara.core.exceptions import UnsuppliedHookWarning

    class Clipper(BaseCallback):
        def on_after_backward(self, batch: int, **kwargs: Any) -> None: ...

        def on_before_optimizer_step(self, batch: int, **kwargs: Any) -> None: ...

    with pytest.warns(UnsuppliedHookWarning) as caught:
        train(SaraCallback(CallbackManager([Clipper()]), output_dir=tmp_path), epochs=2)
    messages = [str(warning.message) for warning in caught if warning.category is UnsuppliedHookWarning]
    assert len(messages) == 2
    assert all("Clipper overrides" in message and "'keras' trainer" in message for message in messages)
    assert ["on_after_backward" in messages[0], "on_before_optimizer_step" in messages[1]] == [True, True]


def test_a_checkpoint_written_through_save_checkpoint_is_announced_and_a_resume_loads_its_state_file_first(
    tmp_path: Path,
) -> None:
    from altametris.sara.core.base_callback import BaseCallback

    class Watcher(BaseCallback):
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, bool]] = []

        def on_checkpoint_save(self, path: str, **kwargs: Any) -> None:
            self.seen.append(("save", os.path.basename(path), os.path.isfile(path)))

        def on_checkpoint_load(self, path: str, **kwargs: Any) -> None:
            self.seen.append(("load", os.path.basename(path), os.path.isfile(path)))

        def on_train_start(self, **kwargs: Any) -> None:
            self.seen.append(("start", str(kwargs["start_epoch"]), kwargs["global_step"] > 0))

    config = {
        "callbacks": [
            {"name": "checkpoint", "params": {"dirpath": "ckpt", "monitor": False, "filename": "e{epoch}.keras",
                                               "save_top_k": -1}},
        ]
    }  # fmt: skip
    folder = tmp_path / "run"
    state = folder / "backup-sara.json"
    watcher = Watcher()
    first = SaraCallback(CallbackManager.from_config(config), output_dir=folder, state_path=state)
    first.manager.add_callback(watcher)
    with pytest.raises(RuntimeError):
        train(first, epochs=4, crash_at=9, extra=[keras.callbacks.BackupAndRestore(str(folder / "backup"))])
    assert watcher.seen == [("start", "0", False), ("save", "e0.keras", True), ("save", "e1.keras", True)]

    again = Watcher()
    resumed = SaraCallback(CallbackManager.from_config(config), output_dir=folder, state_path=state)
    resumed.manager.add_callback(again)
    train(resumed, epochs=4, extra=[keras.callbacks.BackupAndRestore(str(folder / "backup"))])
    assert again.seen[:2] == [("load", "backup-sara.json", True), ("start", "2", True)]
    assert again.seen[2:] == [("save", "e2.keras", True), ("save", "e3.keras", True)]


def test_sigterm_ends_the_batch_runs_on_train_end_then_exits_143_and_the_resume_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    config = {"callbacks": [{"name": "csv_logger", "params": {"path": "batches.csv", "per_batch": True}}, "history"]}
    whole = SaraCallback(config, output_dir=tmp_path / "whole")
    train(whole, epochs=4)
    folder = tmp_path / "interrupted"
    state = folder / "backup-sara.json"
    first, recorder = SaraCallback(config, output_dir=folder, state_path=state), EventRecorder()
    first.manager.add_callback(recorder)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as preempted:
        train(first, epochs=4, sigterm_at=9, extra=[keras.callbacks.BackupAndRestore(str(folder / "backup"))])
    assert (preempted.value.code, preempted.value.last_epoch) == (143, 1)  # step 9: epoch 2, batch 1
    assert signal.getsignal(signal.SIGTERM) is before
    assert recorder.hooks[-1] == "on_train_end"
    assert [(event.epoch, event.batch) for event in events_of(recorder, "on_batch_end")][-1] == (2, 1)
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1]  # the partial epoch dropped
    assert first.control.stop_reason is not None
    assert first.control.stop_reason.startswith("preempted")
    assert sorted(json.loads(state.read_text())["states"]) == ["0", "1"]
    assert (folder / "backup").is_dir()  # kept: a fit that ended would have deleted it

    resumed = SaraCallback(config, output_dir=folder, state_path=state)
    train(resumed, epochs=4, extra=[keras.callbacks.BackupAndRestore(str(folder / "backup"))])
    kept, expected = resumed.manager.callbacks[1], whole.manager.callbacks[1]
    assert kept.epochs == expected.epochs == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert kept.metrics == [pytest.approx(m, rel=1e-4) for m in expected.metrics]  # type: ignore[attr-defined]
    keep = ("epoch", "batch")
    assert [[row[k] for k in keep] for row in csv_rows(folder / "batches.csv")] == [
        [row[k] for k in keep] for row in csv_rows(tmp_path / "whole" / "batches.csv")
    ]
