"""The testing kit: simulated trainings recorded event by event, the conformance check, and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from altametris.sara.core import hookspecs
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import StopTraining
from altametris.sara.core.exceptions import ConformanceError, PluginError, SaraError, TrainingError
from altametris.sara.core.testing import (
    Event,
    EventRecorder,
    HookPoint,
    Recording,
    SimulatedFailure,
    check_callback,
    conformance_problems,
    simulate,
)
from altametris.sara.plugins.early_stopping import EarlyStopping
from altametris.sara.plugins.history import History

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from .conftest import FakeSite

ONE_BATCH = [
    "on_batch_start",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_after_optimizer_step",
    "on_batch_end",
]
ONE_VALIDATION = ["on_validation_start", "on_validation_batch_start", "on_validation_batch_end", "on_validation_end"]
ONE_EPOCH = ["on_epoch_start", *ONE_BATCH, *ONE_BATCH, *ONE_VALIDATION, "on_epoch_end"]


class Spy(BaseCallback):
    """Keeps the keyword arguments of every hook it overrides."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def on_train_start(self, **kwargs: Any) -> None:
        self.seen.append(("on_train_start", kwargs))

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.seen.append(("on_batch_end", {"batch": batch, "metrics": dict(metrics), **kwargs}))

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(("on_exception", {"error": error}))


# -- simulate: the events ----------------------------------------------------------------------------------------------


def test_a_simulated_training_calls_every_hook_in_the_documented_order() -> None:
    recording = simulate(Spy(), epochs=2, batches=2)
    assert recording.hooks == ["on_train_start", *ONE_EPOCH, *ONE_EPOCH, "on_train_end"]
    assert recording.error is None
    assert recording.result is not None
    assert (recording.result.last_epoch, recording.stopped) == (1, False)


def test_each_event_knows_its_epoch_batch_and_arguments() -> None:
    recording = simulate([], epochs=2, batches=2)
    assert [(event.hook, event.epoch, event.batch) for event in recording.of("on_batch_end")] == [
        ("on_batch_end", 0, 0),
        ("on_batch_end", 0, 1),
        ("on_batch_end", 1, 0),
        ("on_batch_end", 1, 1),
    ]
    first = recording.of("on_batch_end")[0]
    assert first.arguments == {"batch": 0, "metrics": {"loss": 1.0}}
    assert set(first.context) >= {"model", "epochs", "config", "control", "num_batches"}
    assert [str(event) for event in recording[:2]] == ["on_train_start", "on_epoch_start (epoch 0)"]
    assert recording.of("on_validation_end")[1].epoch == 1


def test_default_metrics_decrease_and_the_epoch_metrics_are_their_means() -> None:
    recording = simulate([], epochs=2, batches=2)
    losses = [event.arguments["metrics"]["loss"] for event in recording.of("on_batch_end")]
    assert losses == sorted(losses, reverse=True)
    assert recording.of("on_epoch_end")[0].arguments["metrics"] == {"loss": 0.75, "val_loss": 0.5}


def test_metrics_and_validation_are_dicts_or_functions() -> None:
    recording = simulate(
        [],
        epochs=2,
        batches=1,
        metrics=lambda epoch, batch: {"loss": 10.0 * epoch},
        validation={"val_accuracy": 0.9},
    )
    assert [event.arguments["metrics"] for event in recording.of("on_epoch_end")] == [
        {"loss": 0.0, "val_accuracy": 0.9},
        {"loss": 10.0, "val_accuracy": 0.9},
    ]
    assert simulate([], epochs=1, batches=1, metrics={"acc": 1.0}).of("on_batch_end")[0].arguments["metrics"] == {
        "acc": 1.0
    }


def test_validate_false_leaves_the_validation_hooks_out() -> None:
    hooks = simulate([], epochs=1, batches=1, validate=False).hooks
    assert "on_validation_start" not in hooks
    assert hooks == ["on_train_start", "on_epoch_start", *ONE_BATCH, "on_epoch_end", "on_train_end"]


def test_context_keywords_reach_every_hook_and_fit_arguments_are_routed(tmp_path: Path) -> None:
    spy = Spy()
    model = object()
    simulate(spy, epochs=1, batches=1, context={"model": model, "lr": 0.1}, output_dir=tmp_path)
    (_, start), (_, batch_end) = spy.seen
    assert start["model"] is model
    assert (start["lr"], batch_end["lr"]) == (0.1, 0.1)
    assert start["output_dir"] == tmp_path


def test_a_resumed_simulation_starts_at_start_epoch() -> None:
    recording = simulate([], epochs=3, batches=1, start_epoch=2)
    assert [event.epoch for event in recording.of("on_epoch_start")] == [2]


def test_callbacks_under_test_run_after_the_recorder_and_are_given_back() -> None:
    spy = Spy()
    recording = simulate([spy, History()], epochs=1, batches=1)
    assert recording.callbacks[0] is spy
    assert repr(recording.manager).startswith("CallbackManager(callbacks=[EventRecorder, Spy, History")
    assert recording.manager.state_dict() == {
        "History": recording.callbacks[1].state_dict(),
        "sara.progress": {"global_step": 1},  # the manager's own: the batches done, for a resume
    }


# -- simulate: failures and stops --------------------------------------------------------------------------------------


def test_a_failure_at_a_batch_reaches_the_trainer_as_a_training_error_after_on_exception() -> None:
    spy = Spy()
    recording = simulate(spy, epochs=2, batches=3, fail_at=("on_batch_end", 1, 2))
    assert recording.failed
    assert isinstance(recording.error, TrainingError)
    assert isinstance(recording.error.__cause__, SimulatedFailure)
    assert "failed in on_batch_end (epoch 1, batch 2)" in str(recording.error)
    assert str(recording.error.__cause__) == "simulated failure at on_batch_end (epoch 1, batch 2)"
    assert recording.hooks[-2:] == ["on_batch_end", "on_exception"]
    last = recording[-1]
    assert (last.epoch, last.batch, last.arguments["error"]) == (1, 2, recording.error)
    assert spy.seen[-2][1]["batch"] == 2  # the callback under test ran the failing hook first
    assert recording.result is None


class Saver(BaseCallback):
    """Writes a checkpoint at the end of every epoch, as the ``checkpoint`` built-in does."""

    saves_checkpoints = True

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float], **kwargs: Any) -> None:
        kwargs["save_checkpoint"](f"epoch-{epoch}.ckpt")


@pytest.mark.parametrize("hook", [name for name in hookspecs.HOOKS if name != "on_exception"])
def test_a_failure_can_be_injected_at_every_hook(hook: str) -> None:
    written: list[str] = []
    recording = simulate(
        [Saver()],
        epochs=1,
        batches=1,
        fail_at=hook,
        resumed_from="last.ckpt",
        context={"save_checkpoint": written.append},
    )
    assert recording.hooks[-2:] == [hook, "on_exception"]
    assert recording.hooks.count(hook) == 1


def test_a_resumed_simulation_loads_its_checkpoint_first_and_each_saved_checkpoint_is_announced() -> None:
    written: list[str] = []
    recording = simulate(
        [Saver()],
        epochs=2,
        batches=1,
        start_epoch=1,
        resumed_from="epoch-0.ckpt",
        context={"save_checkpoint": written.append},
    )
    assert recording.hooks[:2] == ["on_checkpoint_load", "on_train_start"]
    assert recording[0].arguments == {"path": "epoch-0.ckpt"}
    assert recording.hooks[-3:] == ["on_epoch_end", "on_checkpoint_save", "on_train_end"]
    assert recording.of("on_checkpoint_save")[0].arguments == {"path": "epoch-1.ckpt"}
    assert written == ["epoch-1.ckpt"]


def test_validation_batches_are_numbered_within_their_epoch() -> None:
    recording = simulate([], epochs=2, batches=1, validation_batches=3, fail_at=("on_validation_batch_end", 1, 2))
    assert str(recording.error.__cause__) == "simulated failure at on_validation_batch_end (epoch 1, batch 2)"
    assert [(event.epoch, event.batch) for event in recording.of("on_validation_batch_start")] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]


def test_a_given_error_is_raised_and_a_base_exception_passes_unwrapped() -> None:
    recording = simulate([], fail_at=("on_epoch_end", 0), error=ValueError("disk full"))
    assert isinstance(recording.error, TrainingError)
    assert repr(recording.error.__cause__) == "ValueError('disk full')"
    interrupt = KeyboardInterrupt()
    recording = simulate([], fail_at=("on_batch_start", 0, 1), error=interrupt)
    assert recording.error is interrupt


def test_a_bug_of_the_callback_under_test_is_raised_not_recorded() -> None:
    class Buggy(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            raise ZeroDivisionError("oops")

    with pytest.raises(TrainingError, match="'Buggy' failed in on_epoch_end") as caught:
        simulate(Buggy(), fail_at=("on_epoch_end", 1))
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_a_stop_requested_during_a_batch_ends_the_training_after_that_epoch() -> None:
    recording = simulate(History(), epochs=3, batches=3, stop_at=("on_batch_end", 1, 0))
    assert recording.stopped
    assert recording.stop_reason == "simulated stop at on_batch_end (epoch 1, batch 0)"
    assert recording.control.stop_source == "simulate"
    assert [event.batch for event in recording.of("on_batch_end") if event.epoch == 1] == [0]
    assert recording.hooks[-2:] == ["on_epoch_end", "on_train_end"]
    assert recording.callbacks[0].epochs == [0, 1]


def test_stop_at_and_fail_at_accept_hook_points() -> None:
    recording = simulate([], epochs=2, batches=1, stop_at=HookPoint("on_epoch_end"))
    assert [event.epoch for event in recording.of("on_epoch_end")] == [0]


def test_a_callback_that_raises_stop_training_ends_the_simulation_cleanly() -> None:
    class Quit(BaseCallback):
        def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
            raise StopTraining("enough", source="quit")

    recording = simulate(Quit(), epochs=3)
    assert (recording.stopped, recording.stop_reason, recording.hooks[-1]) == (True, "enough", "on_train_end")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fail_at": "on_batch_ned"}, "'on_batch_ned' is no hook; did you mean 'on_batch_end'?"),
        ({"fail_at": "on_exception"}, "on_exception runs after a failure"),
        ({"fail_at": ("on_epoch_end", 2)}, r"the epoch must be an int in 0\.\.1 .* got 2"),
        ({"stop_at": ("on_batch_end", 0, 3)}, r"the batch must be an int in 0\.\.2 .* got 3"),
        ({"stop_at": ("on_train_start", 0)}, "on_train_start has no epoch"),
        ({"stop_at": ("on_epoch_end", 0, 1)}, "on_epoch_end has no batch"),
        ({"stop_at": ("on_epoch_end", 0, 1, 2)}, "expected a hook name"),
        ({"fail_at": ("on_validation_batch_end", 0, 1)}, r"the batch must be an int in 0\.\.0 .* got 1"),
        (
            {"fail_at": ("on_validation_batch_end", 0, 0), "validate": False},
            "this simulation has no batch where on_validation_batch_end runs",
        ),
        ({"fail_at": "on_checkpoint_load"}, "on_checkpoint_load runs only in a resumed training; give resumed_from"),
        ({"fail_at": "on_checkpoint_save"}, r"runs only after a callback wrote a checkpoint; give context=\{'save_ch"),
        ({"epochs": -1}, "epochs must be an int >= 0"),
        ({"batches": True}, "batches must be an int >= 0"),
        ({"error": ValueError}, "error must be an exception instance"),
    ],
)
def test_points_the_training_would_never_reach_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        simulate([], **options)


def test_a_recording_is_a_sequence_of_events_and_refuses_a_misspelt_hook() -> None:
    recording = simulate([], epochs=1, batches=1)
    assert isinstance(recording, Recording)
    assert len(recording) == len(recording.events) == 13
    assert isinstance(recording[0], Event)
    assert list(recording) == recording.events
    assert repr(recording) == "Recording(events=13, stopped=False)"
    with pytest.raises(TrainingError, match="did you mean 'on_epoch_end'"):
        recording.of("on_epoch_ned")


def test_the_event_recorder_works_in_any_manager() -> None:
    recorder = EventRecorder()
    manager = CallbackManager([recorder])
    manager.on_train_start()
    manager.on_epoch_start(4)
    manager.on_batch_start(2)
    manager.on_exception(ValueError("x"))
    assert [(event.hook, event.epoch, event.batch) for event in recorder.events] == [
        ("on_train_start", None, None),
        ("on_epoch_start", 4, None),
        ("on_batch_start", 4, 2),
        ("on_exception", 4, 2),
    ]
    assert recorder.hooks[0] == "on_train_start"
    assert repr(recorder) == "EventRecorder(events=4)"
    recorder.clear()
    assert recorder.events == []


def test_the_recorder_keeps_copies_of_the_metrics() -> None:
    recorder = EventRecorder()
    metrics = {"loss": 1.0}
    CallbackManager([recorder]).on_batch_end(0, metrics)
    metrics["loss"] = 2.0
    assert recorder.events[0].arguments["metrics"] == {"loss": 1.0}


# -- check_callback ----------------------------------------------------------------------------------------------------

BUILTINS = {
    "metrics_logger": {},
    "progress_bar": {},
    "csv_logger": {"path": "metrics.csv"},
    "jsonl_logger": {"path": "metrics.jsonl"},
    "early_stopping": {},
    "nan_guard": {},
    "timer": {},
    "history": {},
    "checkpoint": {},
    "mlflow_logger": {},
    "tensorboard_logger": {},
}


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_conforms_as_a_registered_plugin(name: str) -> None:
    from altametris.sara.core.discovery import load_plugin

    check_callback(load_plugin(name), plugin_name=name, params=BUILTINS[name])


def test_a_trained_instance_has_its_real_state_checked() -> None:
    history = simulate(History(), epochs=2).callbacks[0]
    assert len(history.state_dict()["epochs"]) == 2
    check_callback(history)


class Good(BaseCallback):
    """Counts batches."""

    def __init__(self, every: int = 1, label: str | None = None) -> None:
        self.every = every
        self.count = 0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.count += 1

    def on_epoch_end(self, epoch: int, model: object = None) -> None:  # a subset of the spec, and a context keyword
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state_dict: Any) -> None:
        self.count = int(state_dict["count"])


def make_good(every: int = 3) -> Good:
    """A factory, as an entry point may name one."""
    return Good(every)


def test_a_conforming_callback_passes_as_a_class_an_instance_or_a_factory() -> None:
    check_callback(Good)
    check_callback(Good(every=2))
    check_callback(make_good, params={"every": 2})
    assert conformance_problems(Good) == []


def _problems(callback: object, **options: Any) -> list[str]:
    with pytest.raises(ConformanceError) as caught:
        check_callback(callback, **options)
    assert list(caught.value.problems) == conformance_problems(callback, **options)
    return list(caught.value.problems)


def test_hook_signatures_that_do_not_fit_the_hookspecs_are_reported() -> None:
    class Sloppy(BaseCallback):
        """Has every kind of hook problem."""

        def on_epoch_ned(self, epoch: int, metrics: dict[str, float]) -> None:
            pass

        def on_batch_end(self, batch: int, lr: float) -> None:
            pass

        async def on_train_start(self, **kwargs: Any) -> None:
            pass

        on_train_end = 42

    problems = _problems(Sloppy)
    assert problems == [
        "Sloppy.on_epoch_ned is no hook of SARA callbacks and would never be called; did you mean 'on_epoch_end'?",
        "Sloppy.on_batch_end requires 'lr', which is no argument of on_batch_end (its arguments: batch, metrics): a "
        "trainer that does not pass 'lr' as a context keyword gets a TrainingError; give it a default, or read it "
        "from **kwargs",
        "Sloppy.on_train_start is a coroutine function (async def): hooks are called synchronously and their result is "
        "dropped, so its body would never run; make it a plain def (hand asynchronous work to a thread or an event "
        "loop of your own)",
        "Sloppy.on_train_end is int 42, not a method: the manager cannot call it",
    ]


def test_static_and_class_method_hooks_are_read_without_self() -> None:
    class Methods(BaseCallback):
        """Hooks that are no plain methods."""

        @staticmethod
        def on_epoch_start(epoch: int) -> None:
            pass

        @classmethod
        def on_epoch_end(cls, epoch: int, metrics: dict[str, float], extra: int) -> None:
            pass

    assert _problems(Methods) == [
        "Methods.on_epoch_end requires 'extra', which is no argument of on_epoch_end (its arguments: epoch, "
        "metrics): a trainer that does not pass 'extra' as a context keyword gets a TrainingError; give it a "
        "default, or read it from **kwargs"
    ]


def test_hooks_inherited_from_a_base_class_of_the_author_are_checked() -> None:
    class Base(BaseCallback):
        """A base of the author's."""

        def on_validation_end(self, metrics: dict[str, float], step: int) -> None:
            pass

    class Child(Base):
        """Inherits a bad hook."""

    assert _problems(Child)[0].startswith("Base.on_validation_end requires 'step'")


def test_constructor_parameters_must_be_readable_by_show_and_the_config_checks() -> None:
    from typing import TYPE_CHECKING as checking

    if checking:
        from collections import OrderedDict

    class Params(BaseCallback):
        def __init__(  # type: ignore[no-untyped-def]
            self,
            plain,
            later: OrderedDict[str, int] | None = None,
            ratio: float = None,  # type: ignore[assignment]  # noqa: RUF013 - what is checked
            /,
        ) -> None:
            pass

        def on_train_start(self, **kwargs: Any) -> None:
            pass

    problems = _problems(Params, params=None)
    assert problems[0].startswith("Params has no docstring: `sara-callbacks show` would print BaseCallback's")
    assert "parameter 'plain' is positional-only and required, which a config cannot give" in problems[1]
    assert "parameter 'plain' has no annotation" in problems[2]
    assert (
        "the annotation 'OrderedDict[str, int] | None' of parameter 'later' cannot be resolved at run time"
        in problems[3]
    )
    assert "the default None of parameter 'ratio' does not fit its annotation float" in problems[4]
    assert problems[5].startswith("cannot build it without parameters to check its hooks and state: ")


def test_a_callback_that_overrides_no_hook_is_reported() -> None:
    class Idle(BaseCallback):
        """Does nothing at all."""

    assert _problems(Idle) == ["Idle overrides no hook (`sara-callbacks show` says 'hooks: none'): it would never run"]


def test_params_are_checked_as_a_configs_are() -> None:
    problems = _problems(Good, params={"every": "2"})
    assert problems[0].startswith("cannot build it with params {'every': '2'} to check its hooks and state: ")
    assert "parameter 'every' expects int, got str '2'" in problems[0]


class _Stateful(BaseCallback):
    """A state of its own: subclasses break the round trip in one way each."""

    def __init__(self) -> None:
        self.value: Any = None

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state_dict: Any) -> None:
        self.value = state_dict["value"]


def test_a_state_must_survive_a_json_round_trip() -> None:
    class Unwritable(_Stateful):
        """Keeps a set and a dict with int keys."""

        def state_dict(self) -> dict[str, Any]:
            return {"seen": {1, 2}, "by_epoch": {3: 0.5}}

    assert _problems(Unwritable) == [
        "Unwritable.state_dict() does not survive JSON: at state['seen']: set {1, 2} is not JSON data",
        "Unwritable.state_dict() does not survive JSON: at state['by_epoch']: the key 3 is int, which JSON turns into "
        "a string",
    ]


def test_a_state_that_changes_through_load_state_dict_is_reported() -> None:
    class Forgetful(_Stateful):
        """Loads its state wrongly."""

        def __init__(self) -> None:
            self.value = [1, 2.5, float("nan")]

        def load_state_dict(self, state_dict: Any) -> None:
            self.value = [1, 2, float("nan")]

    assert _problems(Forgetful) == [
        "Forgetful: state_dict() -> JSON -> load_state_dict() -> state_dict() gives another state, at "
        "state['value'][1]: 2.5 became 2"
    ]


def test_state_methods_go_in_pairs_and_the_state_key_is_a_string() -> None:
    class OnlySaves(BaseCallback):
        """Saves, never loads."""

        state_key = ""  # type: ignore[assignment]

        def on_train_start(self, **kwargs: Any) -> None:
            pass

        def state_dict(self) -> dict[str, Any]:
            return {}

    class OnlyLoads(_Stateful):
        """Loads, never saves."""

        state_dict = BaseCallback.state_dict  # type: ignore[assignment]

    assert _problems(OnlySaves) == [
        "OnlySaves overrides state_dict but not load_state_dict: its state is saved, never restored",
        "OnlySaves.state_key is ''; expected a non-empty string",
    ]
    assert _problems(OnlyLoads) == [
        "OnlyLoads overrides load_state_dict but not state_dict: the manager saves only callbacks that override "
        "state_dict, so its load_state_dict never runs"
    ]


def test_a_failing_state_method_is_reported() -> None:
    class Raises(_Stateful):
        """Cannot load."""

        def load_state_dict(self, state_dict: Any) -> None:
            raise KeyError("value")

    assert _problems(Raises) == [
        "Raises.load_state_dict() of its own state, read back from JSON, raised KeyError: 'value'"
    ]


def test_what_is_no_callback_is_reported_alone() -> None:
    assert _problems(dict) == [
        "plugin 'dict' (target 'builtins:dict') is not a callback: expected a BaseCallback subclass or a callable "
        "returning a BaseCallback instance, got class builtins.dict, which does not derive from BaseCallback; derive "
        "it from altametris.sara.core.base_callback.BaseCallback"
    ]


def test_plugin_name_checks_the_registration(plugin_site: FakeSite) -> None:
    assert conformance_problems(History, plugin_name="history") == []
    problems = _problems(History, plugin_name="recorder")
    assert problems == [
        "registration: plugin 'recorder' (sara-test-good==1.0) loads 'sara_test_good:Recorder', which is not "
        "History: point the entry point of the 'sara.callbacks' group at it"
    ]
    assert _problems(History, plugin_name="histroy")[0].startswith(
        "registration: unknown plugin 'histroy'; did you mean 'history'?"
    )


def test_the_error_is_a_plugin_error_that_lists_every_problem() -> None:
    class Idle(BaseCallback):
        """Does nothing."""

    with pytest.raises(ConformanceError) as caught:
        check_callback(Idle, plugin_name="idle")
    error = caught.value
    assert isinstance(error, PluginError)
    assert isinstance(error, SaraError)
    assert (error.callback, error.plugin) == (Idle, "idle")
    assert str(error).splitlines()[0] == "plugin 'idle' (Idle) does not fit the callback contract; 2 problems:"
    assert all(line.startswith("  - ") for line in str(error).splitlines()[1:])


def test_a_trained_early_stopping_conforms_with_its_counters() -> None:
    recording = simulate(EarlyStopping(patience=1), epochs=3, validation=lambda epoch: {"val_loss": 1.0 + epoch})
    stopper = recording.callbacks[0]
    assert recording.stopped
    assert stopper.state_dict()["wait"] == 1
    check_callback(stopper)


# -- imports and the pytest plugin -------------------------------------------------------------------------------------


def _modules_after(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return eval(result.stdout)  # a list literal printed by the child


def test_the_kit_does_not_import_pytest_and_the_core_does_not_import_the_kit() -> None:
    after_kit = _modules_after("import altametris.sara.core.testing")
    assert "pytest" not in after_kit
    assert "_pytest" not in after_kit
    after_core = _modules_after("import altametris.sara.core")
    assert "altametris.sara.core.testing" not in after_core
    assert "altametris.sara.core.testing._conformance" not in after_core


def test_loading_the_pytest_plugin_imports_no_part_of_the_kit() -> None:
    loaded = _modules_after("import altametris.sara.core.testing._pytest_plugin")
    kit = [name for name in loaded if name.startswith("altametris.sara.core.testing.") and "pytest" not in name]
    assert kit == ["altametris.sara.core.testing._types"]


def test_the_pytest_plugin_is_registered_under_pytest11() -> None:
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points
    else:  # pragma: no cover
        from importlib_metadata import entry_points

    (plugin,) = [entry for entry in entry_points(group="pytest11") if entry.name == "sara"]
    assert plugin.value == "altametris.sara.core.testing._pytest_plugin"


PLUGIN_TEST = """
    from altametris.sara.core.base_callback import BaseCallback, CallbackManager


    class Writes(BaseCallback):
        '''Writes one line per epoch into out.txt under the output_dir.'''

        def on_epoch_end(self, epoch, metrics, **kwargs):
            with open(kwargs["output_dir"] / "out.txt", "a") as file:
                file.write(f"{epoch}\\n")


    def test_simulate(sara_simulate, tmp_path):
        recording = sara_simulate(Writes(), epochs=3)
        assert recording.hooks[-1] == "on_train_end"
        assert (tmp_path / "out.txt").read_text() == "0\\n1\\n2\\n"


    def test_recorder(sara_recorder):
        CallbackManager([sara_recorder]).on_epoch_start(1)
        assert sara_recorder.hooks == ["on_epoch_start"]
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_plugin_user.py").write_text(textwrap.dedent(PLUGIN_TEST))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, "test_plugin_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_any_pytest_run_has_the_fixtures_without_configuration(tmp_path: Path) -> None:
    listed = _pytest(tmp_path, "--fixtures")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "sara_simulate -- " in listed.stdout
    assert "sara_recorder -- " in listed.stdout
    ran = _pytest(tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


def test_the_fixtures_here_too(sara_simulate: Any, sara_recorder: EventRecorder, tmp_path: Path) -> None:
    recording = sara_simulate([sara_recorder], epochs=1, batches=1)
    assert recording.of("on_train_start")[0].context["output_dir"] == tmp_path
    assert sara_recorder.hooks == recording.hooks


def test_declared_parameter_choices_must_name_parameters_hold_values_and_include_the_default() -> None:
    class Chooser(BaseCallback):
        """Declares choices wrongly in three ways."""

        parameter_choices: ClassVar[Mapping[str, Any]] = {"mood": ("a", "b"), "side": "ab", "mode": ("min", "max")}

        def __init__(self, side: str = "a", mode: str = "mean") -> None:
            self.side, self.mode = side, mode

        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            pass

    assert _problems(Chooser) == [
        "Chooser.parameter_choices names 'mood', which is no parameter of its constructor; its parameters are: "
        "side, mode",
        "Chooser.parameter_choices['side'] is 'ab'; expected a non-empty tuple of values",
        "Chooser: the default 'mean' of parameter 'mode' is not one of its parameter_choices: a config could not "
        "give that value back",
    ]
