"""The reference loop: hook order, context, metrics, stop requests, failures, resumes."""

from __future__ import annotations

import csv
import json
from typing import Any, Callable

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import StopTraining, TrainingControl
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.loop import FitResult, fit
from altametris.sara.plugins.csv_logger import CSVLogger
from altametris.sara.plugins.jsonl_logger import JSONLLogger

LIFECYCLE = (
    "on_train_start",
    "on_epoch_start",
    "on_batch_start",
    "on_batch_end",
    "on_validation_start",
    "on_validation_end",
    "on_epoch_end",
    "on_train_end",
)


class EventRecorder(BaseCallback):
    """Records every hook call as ``(hook, epoch or batch)``; can act once at a chosen hook."""

    def __init__(self, act_at: str | None = None, action: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.events: list[tuple[str, int | None]] = []
        self.contexts: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.act_at = act_at
        self.action = action

    def _record(self, hook: str, number: int | None, kwargs: dict[str, Any]) -> None:
        self.events.append((hook, number))
        self.contexts.append(kwargs)
        if hook == self.act_at and self.action is not None:
            action, self.action = self.action, None
            action(kwargs)

    def on_train_start(self, **kwargs: Any) -> None:
        self._record("on_train_start", None, kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        self._record("on_train_end", None, kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self._record("on_epoch_start", epoch, kwargs)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_epoch_end", epoch, kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        self._record("on_batch_start", batch, kwargs)

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_batch_end", batch, kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        self._record("on_validation_start", None, kwargs)

    def on_validation_end(self, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_validation_end", None, kwargs)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)
        self.events.append(("on_exception", None))


def epoch_events(epoch: int, batches: int, *, validation: bool = True) -> list[tuple[str, int | None]]:
    events: list[tuple[str, int | None]] = [("on_epoch_start", epoch)]
    for batch in range(batches):
        events += [("on_batch_start", batch), ("on_batch_end", batch)]
    if validation:
        events += [("on_validation_start", None), ("on_validation_end", None)]
    return [*events, ("on_epoch_end", epoch)]


def run(recorder: BaseCallback, *extra: BaseCallback, epochs: int = 2, batches: int = 2, **kwargs: Any) -> FitResult:
    kwargs.setdefault("validate", lambda: {"val_loss": 0.5})
    kwargs.setdefault("train_step", lambda batch: {"loss": float(batch)})
    return fit(CallbackManager([recorder, *extra]), epochs=epochs, batches_per_epoch=batches, **kwargs)


# -- order and context ---------------------------------------------------------------------------------------------


def test_the_hooks_run_in_the_documented_order() -> None:
    recorder = EventRecorder()
    result = run(recorder, epochs=2, batches=3)
    assert recorder.events == [
        ("on_train_start", None),
        *epoch_events(0, 3),
        *epoch_events(1, 3),
        ("on_train_end", None),
    ]
    assert (result.last_epoch, result.epochs_run, result.stopped, result.next_epoch) == (1, 2, False, 2)


def test_without_validate_the_validation_hooks_do_not_run() -> None:
    recorder = EventRecorder()
    run(recorder, epochs=1, batches=1, validate=None)
    assert recorder.events == [("on_train_start", None), *epoch_events(0, 1, validation=False), ("on_train_end", None)]


TRAIN_START = ("start_epoch", "global_step", "rank", "world_size")
"""What on_train_start's context holds beyond every hook's."""


def test_every_hook_gets_the_same_context() -> None:
    recorder = EventRecorder()
    model, config, control = object(), {"lr": 0.1}, TrainingControl()

    def save(path: str) -> None:
        pass

    run(
        recorder,
        model=model,
        config=config,
        control=control,
        save_checkpoint=save,
        output_dir="out",
        context={"optimizer": "sgd"},
    )
    first = recorder.contexts[0]
    assert set(first) == {
        "model",
        "epochs",
        "config",
        "control",
        "save_checkpoint",
        "output_dir",
        "num_batches",
        "optimizer",
        *TRAIN_START,
    }
    assert first["model"] is model
    assert first["config"] is config
    assert first["control"] is control
    assert (first["epochs"], first["num_batches"], str(first["output_dir"])) == (2, 2, "out")
    # the batch hooks' data and step, on_train_end's last metrics, on_train_start's place: see below
    per_hook = {"batch_data", "metrics", "global_step", *TRAIN_START}
    common = {k: v for k, v in first.items() if k not in per_hook}
    assert all({k: v for k, v in context.items() if k not in per_hook} == common for context in recorder.contexts)


def test_the_context_always_has_a_control_and_omits_what_was_not_given() -> None:
    recorder = EventRecorder()
    fit(CallbackManager([recorder]), epochs=1, data=lambda epoch: [1, 2], train_step=lambda item: {})
    assert set(recorder.contexts[0]) == {"model", "epochs", "config", "control", *TRAIN_START}
    assert isinstance(recorder.contexts[0]["control"], TrainingControl)


def test_context_cannot_redefine_the_loop_keywords() -> None:
    with pytest.raises(TrainingError, match=r"cannot redefine \['control'\]"):
        run(EventRecorder(), context={"control": None})


# -- data and metrics ----------------------------------------------------------------------------------------------


def test_train_step_receives_each_item_of_data_and_a_function_of_the_epoch_works_too() -> None:
    seen: list[object] = []
    fit(CallbackManager(), epochs=1, data=["a", "b"], train_step=lambda item: seen.append(item) or {})
    fit(CallbackManager(), epochs=2, data=lambda epoch: [epoch * 10], train_step=lambda item: seen.append(item) or {})
    assert seen == ["a", "b", 0, 10]


def test_epoch_metrics_are_batch_means_plus_validation_and_a_clashing_key_gets_val_prefix() -> None:
    received: list[dict[str, float]] = []

    class Keep(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            received.append(dict(metrics))

    fit(
        CallbackManager([Keep()]),
        epochs=1,
        data=[1.0, 2.0, 6.0],
        train_step=lambda x: {"loss": x} if x > 1 else {"loss": x, "lr": 0.1},  # a metric may skip batches
        validate=lambda: {"loss": 0.5, "val_accuracy": 0.9},
    )
    assert received == [{"loss": 3.0, "lr": 0.1, "val_loss": 0.5, "val_accuracy": 0.9}]


def test_callbacks_later_in_the_list_see_what_earlier_ones_add_to_the_epoch_metrics() -> None:
    seen: list[dict[str, float]] = []

    class Adds(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            metrics["added"] = 1.0

    class Reads(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            seen.append(dict(metrics))

    result = run(Adds(), Reads(), epochs=1)
    assert seen[0]["added"] == 1.0
    assert result.metrics["added"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": "3"}, r"epochs must be an int >= 0, got '3'"),
        ({"epochs": 2, "start_epoch": 3}, r"start_epoch=3 is beyond epochs=2"),
        ({"epochs": 2, "data": iter([1, 2])}, r"data is an iterator"),
        ({"epochs": 2, "data": [1], "batches_per_epoch": 1}, r"exactly one of data"),
        ({"epochs": 2, "batches_per_epoch": -1}, r"batches_per_epoch must be an int >= 0"),
        ({"epochs": 2, "data": 5}, r"data must be an iterable"),
        ({"epochs": 2, "batches_per_epoch": 1, "validate": 3}, r"validate must be callable"),
    ],
)
def test_arguments_that_do_not_fit_are_refused_before_any_hook(kwargs: dict[str, Any], message: str) -> None:
    recorder = EventRecorder()
    kwargs.setdefault("train_step", lambda item: {})
    with pytest.raises(TrainingError, match=message):
        fit(CallbackManager([recorder]), **kwargs)
    assert recorder.events == []


# -- stop requests ------------------------------------------------------------------------------------------------


def _request_stop(context: dict[str, Any]) -> None:
    context["control"].request_stop("asked", source="recorder")


STOPPED_AT = {
    # where the stop is asked (first call of the hook) -> what runs, with 2 epochs of 2 batches
    "on_train_start": [("on_train_start", None), ("on_train_end", None)],
    "on_epoch_start": [("on_train_start", None), *epoch_events(0, 0), ("on_train_end", None)],
    "on_batch_start": [("on_train_start", None), *epoch_events(0, 1), ("on_train_end", None)],
    "on_batch_end": [("on_train_start", None), *epoch_events(0, 1), ("on_train_end", None)],
    "on_validation_start": [("on_train_start", None), *epoch_events(0, 2), ("on_train_end", None)],
    "on_validation_end": [("on_train_start", None), *epoch_events(0, 2), ("on_train_end", None)],
    "on_epoch_end": [("on_train_start", None), *epoch_events(0, 2), ("on_train_end", None)],
    "on_train_end": [("on_train_start", None), *epoch_events(0, 2), *epoch_events(1, 2), ("on_train_end", None)],
}


@pytest.mark.parametrize("hook", LIFECYCLE)
def test_a_stop_request_ends_the_training_after_the_batch_or_epoch_and_still_runs_train_end(hook: str) -> None:
    recorder = EventRecorder(act_at=hook, action=_request_stop)
    result = run(recorder)
    assert recorder.events == STOPPED_AT[hook]
    assert result.stopped is True
    assert result.stop_reason == "asked"
    assert result.control.stop_source == "recorder"


def _raise_stop(context: dict[str, Any]) -> None:
    raise StopTraining("raised", source="recorder")


RAISED_AT = {
    # where StopTraining is raised -> what runs between on_train_start and on_train_end
    "on_train_start": [],
    "on_epoch_start": [("on_epoch_start", 0)],
    "on_batch_start": [("on_epoch_start", 0), ("on_batch_start", 0)],
    "on_batch_end": [("on_epoch_start", 0), ("on_batch_start", 0), ("on_batch_end", 0)],
    "on_validation_start": epoch_events(0, 2)[:-2],
    "on_validation_end": epoch_events(0, 2)[:-1],
    "on_epoch_end": epoch_events(0, 2),
    "on_train_end": [*epoch_events(0, 2), *epoch_events(1, 2)],
}


@pytest.mark.parametrize("hook", LIFECYCLE)
def test_stop_training_raised_in_a_hook_ends_the_training_at_once_without_failing_it(hook: str) -> None:
    recorder = EventRecorder(act_at=hook, action=_raise_stop)
    result = run(recorder)
    assert recorder.events == [("on_train_start", None), *RAISED_AT[hook], ("on_train_end", None)]
    assert "on_exception" not in [event for event, _ in recorder.events]
    assert result.stopped is True
    assert result.stop_reason == "raised"


def test_a_stopped_run_reports_its_last_complete_epoch() -> None:
    class StopAfterFirstEpoch(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            kwargs["control"].request_stop("one is enough")

    result = run(StopAfterFirstEpoch(), epochs=5)
    assert (result.last_epoch, result.epochs_run, result.next_epoch) == (0, 1, 1)


# -- failures ------------------------------------------------------------------------------------------------------


def _fail(context: dict[str, Any]) -> None:
    raise ValueError("injected")


@pytest.mark.parametrize("hook", LIFECYCLE)
def test_a_callback_failure_in_any_hook_runs_on_exception_everywhere_then_reaches_the_caller(hook: str) -> None:
    failing = EventRecorder(act_at=hook, action=_fail)
    bystander = EventRecorder()
    with pytest.raises(TrainingError) as caught:
        run(failing, bystander)
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.hook == hook
    for recorder in (failing, bystander):
        assert recorder.events[-1] == ("on_exception", None)
        assert recorder.errors == [caught.value]
    ran = [event for event, _ in failing.events]
    assert ran.count("on_train_end") == (1 if hook == "on_train_end" else 0)


@pytest.mark.parametrize("where", ["train_step", "validate"])
def test_a_training_failure_is_re_raised_unchanged_after_on_exception(where: str) -> None:
    error = RuntimeError("out of memory")

    def boom(*args: object) -> dict[str, float]:
        raise error

    recorder = EventRecorder()
    with pytest.raises(RuntimeError) as caught:
        run(recorder, **{where: boom})
    assert caught.value is error
    assert recorder.errors == [error]
    assert ("on_train_end", None) not in recorder.events


def test_keyboard_interrupt_also_runs_on_exception_and_passes_through() -> None:
    def interrupted(batch: int) -> dict[str, float]:
        raise KeyboardInterrupt

    recorder = EventRecorder()
    with pytest.raises(KeyboardInterrupt):
        fit(CallbackManager([recorder]), epochs=1, batches_per_epoch=1, train_step=interrupted)
    assert isinstance(recorder.errors[0], KeyboardInterrupt)


def test_a_failing_on_exception_does_not_hide_the_training_error(caplog: pytest.LogCaptureFixture) -> None:
    class BadCleanup(BaseCallback):
        def on_exception(self, error: BaseException, **kwargs: Any) -> None:
            raise OSError("disk gone")

    recorder = EventRecorder(act_at="on_epoch_start", action=_fail)
    with pytest.raises(TrainingError, match="injected"):
        run(BadCleanup(), recorder)
    assert recorder.events[-1] == ("on_exception", None)
    assert "disk gone" in caplog.text


def test_an_on_exception_that_fails_as_a_whole_is_logged_and_the_original_error_re_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = CallbackManager([EventRecorder()])
    error = RuntimeError("the real failure")

    def step(batch: int) -> dict[str, float]:
        manager.callbacks.append("not a callback")  # type: ignore[arg-type]  # refused at the next hook call
        raise error

    with pytest.raises(RuntimeError) as caught:
        fit(manager, epochs=1, batches_per_epoch=1, train_step=step)
    assert caught.value is error
    assert "on_exception failed (TrainingError: callbacks[1]: expected a BaseCallback instance" in caplog.text


@pytest.mark.parametrize("logger_class", [CSVLogger, JSONLLogger])
def test_files_are_complete_and_closed_after_a_failure(tmp_path: Any, logger_class: type[CSVLogger]) -> None:
    writer = logger_class(path=tmp_path / "metrics.log")

    def step(batch: int) -> dict[str, float]:
        if step.calls == 5:  # type: ignore[attr-defined]
            raise RuntimeError("crash in epoch 2")
        step.calls += 1  # type: ignore[attr-defined]
        return {"loss": 1.0 / step.calls}  # type: ignore[attr-defined]

    step.calls = 0  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        fit(CallbackManager([writer]), epochs=5, batches_per_epoch=2, train_step=step)
    assert writer.closed
    text = (tmp_path / "metrics.log").read_text()
    assert text.endswith("\n")
    if logger_class is CSVLogger:
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert [int(row["epoch"]) for row in rows] == [0, 1]


# -- resume --------------------------------------------------------------------------------------------------------


def test_start_epoch_continues_a_training() -> None:
    recorder = EventRecorder()
    result = run(recorder, epochs=3, batches=1, start_epoch=2)
    assert recorder.events == [("on_train_start", None), *epoch_events(2, 1), ("on_train_end", None)]
    assert (result.last_epoch, result.epochs_run) == (2, 1)


def test_start_epoch_equal_to_epochs_runs_only_train_start_and_end() -> None:
    recorder = EventRecorder()
    result = run(recorder, epochs=3, start_epoch=3)
    assert recorder.events == [("on_train_start", None), ("on_train_end", None)]
    assert result.last_epoch is None
    assert result.metrics == {}


# -- validating every N epochs --------------------------------------------------------------------------------------


def _every_second_epoch(manager: CallbackManager, curve: list[float], **kwargs: Any) -> FitResult:
    epochs = iter(range(len(curve)))
    current = {"epoch": 0}

    def validate() -> dict[str, float]:
        return {"val_loss": curve[current["epoch"]]}

    def data(epoch: int) -> range:
        current["epoch"] = epoch
        next(epochs)
        return range(2)

    return fit(
        manager,
        epochs=len(curve),
        data=data,
        train_step=lambda batch: {"loss": 1.0},
        validate=validate,
        validate_every_n_epochs=2,
        **kwargs,
    )


def test_validate_every_n_epochs_runs_the_validation_hooks_after_epochs_n_minus_1_2n_minus_1() -> None:
    recorder = EventRecorder()
    _every_second_epoch(CallbackManager([recorder]), [1.0, 0.9, 0.8, 0.7])
    assert [number for hook, number in recorder.events if hook == "on_validation_end"] == [None, None]
    epochs = [hook for hook, _ in recorder.events if hook in ("on_validation_end", "on_epoch_end")]
    assert epochs == ["on_epoch_end", "on_validation_end", "on_epoch_end"] * 2


def test_monitoring_builtins_skip_the_epochs_without_validation(tmp_path: Any) -> None:
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {"name": "csv_logger", "params": {"path": "metrics.csv"}},
                {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 1}},
                {"name": "checkpoint", "params": {"dirpath": "ckpt", "monitor": "val_loss"}},
                {"name": "nan_guard", "params": {"monitor": "val_loss", "check_batches": False}},
            ]
        }
    )
    # val_loss after epochs 1, 3, 5, 7: 0.9, 0.5, 0.7, ... -> no improvement at epoch 5: stop there (patience 1).
    curve = [0.0, 0.9, 0.0, 0.5, 0.0, 0.7, 0.0, 0.1]

    def save(path: str) -> None:
        with open(path, "w") as file:
            file.write("weights")

    result = _every_second_epoch(manager, curve, output_dir=tmp_path, save_checkpoint=save)
    assert (result.last_epoch, result.stopped) == (5, True)
    with (tmp_path / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["epoch"], row["val_loss"]) for row in rows] == [
        ("0", ""),
        ("1", "0.9"),
        ("2", ""),
        ("3", "0.5"),
        ("4", ""),
        ("5", "0.7"),
    ]
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == ["epoch003.ckpt"]


def test_a_misspelt_monitor_is_still_an_error_at_the_first_validated_epoch() -> None:
    manager = CallbackManager.from_config({"callbacks": [{"name": "early_stopping", "params": {"monitor": "val_los"}}]})
    with pytest.raises(TrainingError) as caught:
        _every_second_epoch(manager, [1.0, 0.9, 0.8, 0.7])
    assert "(epoch 1)" in str(caught.value)
    assert "available: ['loss', 'val_loss']. HINT: did you mean 'val_loss'?" in str(caught.value.__cause__)


def test_a_monitor_that_no_epoch_reports_is_an_error_at_the_end_of_the_training() -> None:
    manager = CallbackManager.from_config({"callbacks": [{"name": "checkpoint", "params": {"monitor": "val_loss"}}]})
    with pytest.raises(TrainingError) as caught:
        fit(manager, epochs=2, batches_per_epoch=2, train_step=lambda batch: {"loss": 1.0}, save_checkpoint=print)
    assert "on_train_end" in str(caught.value)
    assert "could not find the monitored key 'val_loss'" in str(caught.value.__cause__)
    assert "available: ['loss']" in str(caught.value.__cause__)


def test_validate_every_n_epochs_must_be_a_positive_int() -> None:
    with pytest.raises(TrainingError, match="validate_every_n_epochs must be an int >= 1, got 0"):
        fit(CallbackManager(), epochs=1, batches_per_epoch=1, train_step=lambda b: None, validate_every_n_epochs=0)


class Clipper(BaseCallback):
    """Overrides a hook that only a ``train_step`` taking ``hooks`` supplies."""

    def on_after_backward(self, batch: int, **kwargs: Any) -> None:
        self.steps = [*getattr(self, "steps", []), kwargs["global_step"]]


def test_a_train_step_without_hooks_warns_once_about_each_step_hook_a_callback_overrides() -> None:
    from altametris.sara.core.exceptions import UnsuppliedHookWarning

    clipper = Clipper()
    with pytest.warns(
        UnsuppliedHookWarning, match=r"Clipper overrides on_after_backward, which the 'fit' trainer"
    ) as w:
        fit(CallbackManager([clipper]), epochs=2, batches_per_epoch=2, train_step=lambda batch: {"loss": 1.0})
    assert len([warning for warning in w if warning.category is UnsuppliedHookWarning]) == 1
    assert not hasattr(clipper, "steps")


def test_a_train_step_taking_hooks_supplies_them_and_gets_no_warning() -> None:
    def train_step(batch: int, hooks: Any) -> dict[str, float]:
        hooks.after_backward()
        return {"loss": 1.0}

    clipper = Clipper()
    fit(CallbackManager([clipper]), epochs=2, batches_per_epoch=2, train_step=train_step)  # filterwarnings = error
    assert clipper.steps == [0, 1, 2, 3]


def test_on_checkpoint_save_names_the_final_file_the_checkpoint_callback_renamed(tmp_path: Any) -> None:
    from pathlib import Path

    from altametris.sara.core.testing import EventRecorder

    recorder = EventRecorder()
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {"name": "checkpoint", "params": {"dirpath": str(tmp_path), "monitor": False, "save_top_k": -1}}
            ]
        }
    )
    manager.add_callback(recorder)
    fit(manager, epochs=2, batches_per_epoch=1, train_step=lambda batch: {"loss": 1.0},
        save_checkpoint=lambda path: Path(path).write_text("{}"))  # fmt: skip
    saved = [event.arguments["path"] for event in recorder.events if event.hook == "on_checkpoint_save"]
    assert saved == [str(tmp_path / "epoch000.ckpt"), str(tmp_path / "epoch001.ckpt")]
    assert all(Path(path).is_file() for path in saved)
