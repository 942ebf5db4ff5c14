"""BaseCallback and CallbackManager: the seed API, as documented, and what the contract adds to it."""

from __future__ import annotations

import abc
import logging
import pickle
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager, logger
from altametris.sara.core.exceptions import HookNameWarning, StateError, TrainingError
from altametris.sara.core.hookspecs import HOOKS
from hypothesis import given
from hypothesis import strategies as st

Event = tuple[str, str, dict[str, Any]]


class EventRecorder(BaseCallback):
    """Records every hook call, with its arguments, into a shared list (the Hugging Face test's idea)."""

    def __init__(self, name: str, events: list[Event]) -> None:
        self.name = name
        self.events = events

    def _record(self, hook: str, **arguments: Any) -> None:
        self.events.append((self.name, hook, arguments))

    def on_train_start(self, **kwargs: Any) -> None:
        self._record("on_train_start", **kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        self._record("on_train_end", **kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self._record("on_epoch_start", epoch=epoch, **kwargs)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_epoch_end", epoch=epoch, metrics=metrics, **kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        self._record("on_batch_start", batch=batch, **kwargs)

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_batch_end", batch=batch, metrics=metrics, **kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        self._record("on_validation_start", **kwargs)

    def on_validation_end(self, metrics: dict[str, float], **kwargs: Any) -> None:
        self._record("on_validation_end", metrics=metrics, **kwargs)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self._record("on_exception", error=error, **kwargs)


def drive(manager: CallbackManager, epochs: int = 2, batches: int = 2) -> None:
    """A minimal training loop in the documented order."""
    manager.on_train_start()
    for epoch in range(epochs):
        manager.on_epoch_start(epoch)
        for batch in range(batches):
            manager.on_batch_start(batch)
            manager.on_batch_end(batch, {"loss": 1.0 / (batch + 1)})
        manager.on_validation_start()
        manager.on_validation_end({"val_loss": 0.5})
        manager.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.5})
    manager.on_train_end()


# -- BaseCallback --------------------------------------------------------------------------------------------------


def test_base_callback_is_an_abc_whose_hooks_are_all_optional() -> None:
    assert issubclass(BaseCallback, abc.ABC)

    class Nothing(BaseCallback):
        pass

    callback = Nothing()
    for name, spec in HOOKS.items():
        assert getattr(callback, name)(*range(len(spec.argnames)), extra="context") is None


def test_base_callback_state_defaults() -> None:
    class Stateless(BaseCallback):
        pass

    callback = Stateless()
    assert callback.state_key == "test_base_callback_state_defaults.<locals>.Stateless"
    assert callback.state_dict() == {}
    callback.load_state_dict({})


def test_the_seed_module_example() -> None:
    printed: list[str] = []

    class LoggingCallback(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            printed.append(f"Epoch {epoch}: loss={metrics['loss']}")

    manager = CallbackManager([LoggingCallback()])
    manager.on_epoch_end(epoch=1, metrics={"loss": 0.5})
    assert printed == ["Epoch 1: loss=0.5"]


# -- order ---------------------------------------------------------------------------------------------------------


def test_event_recorder_pins_the_full_lifecycle_order_for_several_callbacks() -> None:
    events: list[Event] = []
    manager = CallbackManager([EventRecorder("a", events), EventRecorder("b", events)])
    drive(manager, epochs=2, batches=2)

    per_epoch = []
    for epoch in range(2):
        per_epoch += [("on_epoch_start", {"epoch": epoch})]
        for batch in range(2):
            per_epoch += [
                ("on_batch_start", {"batch": batch}),
                ("on_batch_end", {"batch": batch, "metrics": {"loss": 1.0 / (batch + 1)}}),
            ]
        per_epoch += [
            ("on_validation_start", {}),
            ("on_validation_end", {"metrics": {"val_loss": 0.5}}),
            ("on_epoch_end", {"epoch": epoch, "metrics": {"loss": 0.5, "val_loss": 0.5}}),
        ]
    expected_hooks = [("on_train_start", {}), *per_epoch, ("on_train_end", {})]
    expected = [(name, hook, args) for hook, args in expected_hooks for name in ("a", "b")]
    assert events == expected


def test_callbacks_are_called_in_registration_order_not_pluggys_reverse_order() -> None:
    events: list[Event] = []
    manager = CallbackManager([EventRecorder(name, events) for name in "abcde"])
    manager.on_batch_end(0, {})
    assert [name for name, _, _ in events] == list("abcde")


@given(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 5)), max_size=30))
def test_order_is_kept_across_any_sequence_of_adds_and_removes(operations: list[tuple[str, int]]) -> None:
    events: list[Event] = []
    pool = [EventRecorder(str(index), events) for index in range(6)]
    manager = CallbackManager()
    model: list[EventRecorder] = []
    for operation, index in operations:
        callback = pool[index]
        if operation == "add":
            manager.add_callback(callback)
            model.append(callback)
        elif callback in model:
            manager.remove_callback(callback)
            model.remove(callback)
        else:
            with pytest.raises(TrainingError, match="not registered"):
                manager.remove_callback(callback)
        events.clear()
        manager.on_epoch_start(0)
        assert [name for name, _, _ in events] == [callback.name for callback in model]
        assert list(manager) == model
        assert len(manager) == len(model)


# -- validation ----------------------------------------------------------------------------------------------------


class DuckTyped:
    """Has the hooks, but is no BaseCallback."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


NOT_CALLBACKS = [None, 3, "csv_logger", b"bytes", [BaseCallback], {"name": "x"}, DuckTyped(), print, BaseCallback]


@pytest.mark.parametrize("item", NOT_CALLBACKS, ids=repr)
def test_anything_that_is_not_a_callback_instance_is_refused_at_construction(item: object) -> None:
    class Fine(BaseCallback):
        pass

    with pytest.raises(TrainingError, match=r"callbacks\[1\]: expected a BaseCallback instance, got") as caught:
        CallbackManager([Fine(), item])  # type: ignore[list-item]
    assert caught.value.callback is item


@pytest.mark.parametrize("item", NOT_CALLBACKS, ids=repr)
def test_anything_that_is_not_a_callback_instance_is_refused_by_add_callback(item: object) -> None:
    manager = CallbackManager()
    with pytest.raises(TrainingError, match=r"add_callback\(\): expected a BaseCallback instance"):
        manager.add_callback(item)  # type: ignore[arg-type]
    assert len(manager) == 0


def test_a_callback_class_instead_of_an_instance_gets_a_hint() -> None:
    class Forgotten(BaseCallback):
        pass

    with pytest.raises(TrainingError, match="a class: instantiate it"):
        CallbackManager([Forgotten])  # type: ignore[list-item]


def test_an_object_whose_repr_fails_is_still_reported() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(TrainingError, match="got Unprintable <Unprintable object>"):
        CallbackManager([Unprintable()])  # type: ignore[list-item]


def test_removing_a_callback_that_is_not_registered_names_it_and_the_registered_ones() -> None:
    class Registered(BaseCallback):
        pass

    class Stranger(BaseCallback):
        pass

    manager = CallbackManager([Registered()])
    stranger = Stranger()
    with pytest.raises(TrainingError, match=r"not registered with this manager \(registered: Registered\)") as caught:
        manager.remove_callback(stranger)
    assert caught.value.callback is stranger


def test_a_misspelt_hook_draws_one_warning_per_class_naming_the_closest_hook() -> None:
    class Misspelt(BaseCallback):
        def on_epoc_end(self, epoch: int, metrics: dict[str, float]) -> None:
            pass

    with pytest.warns(HookNameWarning, match=r"Misspelt.on_epoc_end is not a hook .* did you mean 'on_epoch_end'\?"):
        CallbackManager([Misspelt()])
    # Once per class: a second registration, here or in another manager, stays silent (warnings are errors here).
    CallbackManager([Misspelt(), Misspelt()]).add_callback(Misspelt())


def test_a_misspelt_hook_in_a_base_class_is_reported_too() -> None:
    class Base(BaseCallback):
        def on_trian_start(self) -> None:
            pass

    class Derived(Base):
        pass

    manager = CallbackManager()
    with pytest.warns(HookNameWarning, match="did you mean 'on_train_start'"):
        manager.add_callback(Derived())


def test_on_star_attributes_that_are_not_methods_are_not_hooks_and_draw_no_warning() -> None:
    class Configured(BaseCallback):
        on_error = "raise"

    CallbackManager([Configured()])


# -- arguments -----------------------------------------------------------------------------------------------------


def test_context_keywords_reach_kwargs_as_given() -> None:
    events: list[Event] = []
    model = object()
    CallbackManager([EventRecorder("a", events)]).on_batch_end(3, {"loss": 1.0}, model=model, lr=0.1)
    assert events == [("a", "on_batch_end", {"batch": 3, "metrics": {"loss": 1.0}, "model": model, "lr": 0.1})]


def test_positional_and_keyword_calls_reach_callbacks_alike() -> None:
    events: list[Event] = []
    manager = CallbackManager([EventRecorder("a", events)])
    manager.on_epoch_end(1, {"loss": 0.5})
    manager.on_epoch_end(epoch=1, metrics={"loss": 0.5})
    manager.on_epoch_end(1, metrics={"loss": 0.5}, extra=True)
    assert [args for _, _, args in events] == [
        {"epoch": 1, "metrics": {"loss": 0.5}},
        {"epoch": 1, "metrics": {"loss": 0.5}},
        {"epoch": 1, "metrics": {"loss": 0.5}, "extra": True},
    ]


def test_a_callback_naming_fewer_arguments_gets_only_those_it_names() -> None:
    seen: list[tuple[str, Any]] = []

    class Few(BaseCallback):
        def on_epoch_end(self, metrics):  # type: ignore[no-untyped-def, override]
            seen.append(("metrics", metrics))

        def on_batch_end(self, batch):  # type: ignore[no-untyped-def, override]
            seen.append(("batch", batch))

        def on_train_start(self):  # type: ignore[no-untyped-def, override]
            seen.append(("start", None))

    manager = CallbackManager([Few()])
    manager.on_epoch_end(2, {"loss": 1.0}, model="m")
    manager.on_epoch_end(2, {"loss": 1.0})
    manager.on_batch_end(4, {}, model="m")
    manager.on_batch_end(4, {})
    manager.on_train_start(model="m")
    assert seen == [("metrics", {"loss": 1.0})] * 2 + [("batch", 4)] * 2 + [("start", None)]


def test_arguments_are_matched_by_name_not_by_position() -> None:
    seen: list[tuple[Any, Any]] = []

    class Reordered(BaseCallback):
        def on_epoch_end(self, metrics, epoch):  # type: ignore[no-untyped-def, override]
            seen.append((metrics, epoch))

    CallbackManager([Reordered()]).on_epoch_end(3, {"loss": 1.0})
    assert seen == [({"loss": 1.0}, 3)]


def test_named_context_arguments_are_taken_from_the_context() -> None:
    seen: list[Any] = []

    class WantsModel(BaseCallback):
        def on_epoch_end(self, epoch, metrics, model=None):  # type: ignore[no-untyped-def, override]
            seen.append((epoch, model))

        def on_train_start(self, *, model):  # type: ignore[no-untyped-def, override]
            seen.append(("start", model))

    manager = CallbackManager([WantsModel()])
    manager.on_train_start(model="net", unrelated=1)
    manager.on_epoch_end(0, {}, model="net", unrelated=1)
    manager.on_epoch_end(1, {})
    assert seen == [("start", "net"), (0, "net"), (1, None)]


def test_a_required_argument_the_trainer_did_not_pass_is_named() -> None:
    class WantsModel(BaseCallback):
        def on_train_start(self, model):  # type: ignore[no-untyped-def, override]
            pass

    with pytest.raises(TrainingError, match=r"'WantsModel' failed in on_train_start: it requires 'model'") as caught:
        CallbackManager([WantsModel()]).on_train_start(lr=0.1)
    assert caught.value.hook == "on_train_start"
    assert "it passed 'lr'" in str(caught.value)


def test_a_hook_set_on_the_instance_is_called() -> None:
    class Plain(BaseCallback):
        pass

    seen: list[int] = []
    callback = Plain()

    def on_epoch_start(epoch: int) -> None:
        seen.append(epoch)

    callback.on_epoch_start = on_epoch_start  # type: ignore[method-assign]
    CallbackManager([callback]).on_epoch_start(5)
    assert seen == [5]


def test_a_hook_that_returns_something_is_still_a_no_result_call() -> None:
    class Returns(BaseCallback):
        def on_validation_start(self, **kwargs: Any) -> int:  # type: ignore[override]
            return 42

    assert CallbackManager([Returns()]).on_validation_start() is None  # type: ignore[func-returns-value]


# -- _execute_callback_hook ----------------------------------------------------------------------------------------


def test_execute_callback_hook_maps_positional_arguments_to_spec_names() -> None:
    events: list[Event] = []
    manager = CallbackManager([EventRecorder("a", events)])
    manager._execute_callback_hook("on_batch_end", 1, {"loss": 2.0}, model="m")
    manager._execute_callback_hook("on_train_end")
    assert events == [
        ("a", "on_batch_end", {"batch": 1, "metrics": {"loss": 2.0}, "model": "m"}),
        ("a", "on_train_end", {}),
    ]


def test_execute_callback_hook_refuses_an_unknown_hook_listing_the_hooks() -> None:
    with pytest.raises(
        TrainingError, match=r"unknown hook 'on_epoc_end'; the hooks are: on_checkpoint_load, on_train_start, .*"
    ):
        CallbackManager()._execute_callback_hook("on_epoc_end", 1)


def test_execute_callback_hook_refuses_arguments_that_do_not_fit() -> None:
    manager = CallbackManager()
    with pytest.raises(TrainingError, match=r"takes 1 positional argument\(s\) \(batch\), got 2"):
        manager._execute_callback_hook("on_batch_start", 1, 2)
    with pytest.raises(TrainingError, match="'epoch' both by position and by name"):
        manager._execute_callback_hook("on_epoch_start", 1, epoch=1)


def test_execute_callback_hook_with_a_missing_spec_argument_calls_those_that_do_not_need_it() -> None:
    seen: list[Any] = []

    class EpochOnly(BaseCallback):
        def on_epoch_end(self, epoch):  # type: ignore[no-untyped-def, override]
            seen.append(epoch)

    class NeedsMetrics(BaseCallback):
        def on_epoch_end(self, epoch, metrics):  # type: ignore[no-untyped-def, override]
            seen.append(metrics)

    manager = CallbackManager([EpochOnly()])
    manager._execute_callback_hook("on_epoch_end", 7)
    assert seen == [7]
    manager.add_callback(NeedsMetrics())
    with pytest.raises(
        TrainingError, match=r"'NeedsMetrics' failed in on_epoch_end \(epoch 7\): it requires 'metrics'"
    ):
        manager._execute_callback_hook("on_epoch_end", 7)


# -- errors --------------------------------------------------------------------------------------------------------


class NoArgs(Exception):
    pass


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() is broken")


ERROR_SHAPES = [
    (ValueError("plain message"), "ValueError: plain message"),
    (NoArgs(), "NoArgs"),
    (BadStr("x"), "BadStr: <str() failed with RuntimeError>"),
    (KeyError("loss"), "KeyError: 'loss'"),
    (OSError(28, "No space left on device"), "OSError: [Errno 28] No space left on device"),
    (TrainingError("inner"), "TrainingError: inner"),
]


def _raiser(hook: str, error: BaseException) -> BaseCallback:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    class Failing(BaseCallback):
        pass

    callback = Failing()
    setattr(callback, hook, fail)
    return callback


def _call(manager: CallbackManager, hook: str) -> None:
    arguments = {"epoch": 3, "batch": 5, "metrics": {"loss": 1.0}, "error": RuntimeError("x"), "path": "ck.pt"}
    getattr(manager, hook)(*[arguments[name] for name in HOOKS[hook].argnames])


WHERE = {"on_epoch_start": " (epoch 3)", "on_epoch_end": " (epoch 3)"}
WHERE.update(dict.fromkeys(["on_batch_start", "on_after_backward", "on_before_optimizer_step"], " (batch 5)"))
WHERE.update(dict.fromkeys(["on_after_optimizer_step", "on_batch_end"], " (batch 5)"))
WHERE.update(dict.fromkeys(["on_validation_batch_start", "on_validation_batch_end"], " (validation batch 5)"))


@pytest.mark.parametrize(("error", "described"), ERROR_SHAPES, ids=lambda value: type(value).__name__)
@pytest.mark.parametrize("hook", [name for name in HOOKS if not HOOKS[name].cleanup])
def test_a_callbacks_exception_becomes_a_training_error_naming_callback_hook_and_position(
    hook: str, error: Exception, described: str
) -> None:
    callback = _raiser(hook, error)
    manager = CallbackManager([callback])
    with pytest.raises(TrainingError) as caught:
        _call(manager, hook)
    assert str(caught.value) == f"callback 'Failing' failed in {hook}{WHERE.get(hook, '')}: {described}"
    assert caught.value.__cause__ is error
    assert caught.value.callback is callback
    assert caught.value.hook == hook


def test_the_epoch_is_known_in_batch_hooks_once_an_epoch_has_started() -> None:
    callback = _raiser("on_batch_end", ValueError("boom"))
    manager = CallbackManager([callback])
    manager.on_epoch_start(4)
    with pytest.raises(TrainingError, match=r"failed in on_batch_end \(epoch 4, batch 9\)") as caught:
        manager.on_batch_end(9, {})
    assert (caught.value.epoch, caught.value.batch) == (4, 9)


def test_a_failure_stops_the_hook_call_at_the_failing_callback() -> None:
    events: list[Event] = []
    manager = CallbackManager(
        [EventRecorder("a", events), _raiser("on_epoch_start", ValueError()), EventRecorder("c", events)]
    )
    with pytest.raises(TrainingError):
        manager.on_epoch_start(0)
    assert [name for name, _, _ in events] == ["a"]


def test_a_failure_with_context_keywords_is_wrapped_the_same_way() -> None:
    callback = _raiser("on_batch_end", ValueError("boom"))
    with pytest.raises(TrainingError, match=r"failed in on_batch_end \(batch 2\): ValueError: boom"):
        CallbackManager([callback]).on_batch_end(2, {}, model="m")


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()], ids=repr)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_base_exceptions_that_are_not_exceptions_pass_through_untouched(hook: str, error: BaseException) -> None:
    manager = CallbackManager([_raiser(hook, error)])
    with pytest.raises(type(error)) as caught:
        _call(manager, hook)
    assert caught.value is error


def test_on_exception_reaches_every_callback_and_logs_failures_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Event] = []
    original = RuntimeError("the training failed")
    manager = CallbackManager(
        [EventRecorder("a", events), _raiser("on_exception", ValueError("cleanup failed")), EventRecorder("c", events)]
    )
    with caplog.at_level(logging.ERROR, logger=logger.name):
        manager.on_exception(original, model="m")
    assert [(name, args["error"]) for name, _, args in events] == [("a", original), ("c", original)]
    assert "callback 'Failing' failed in on_exception: ValueError: cleanup failed" in caplog.text


# -- changes while running -----------------------------------------------------------------------------------------


def test_a_callback_removing_itself_during_a_hook_takes_effect_from_the_next_call() -> None:
    events: list[Event] = []

    class OneShot(EventRecorder):
        def __init__(self, manager: CallbackManager) -> None:
            super().__init__("once", events)
            self.manager = manager

        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            super().on_batch_end(batch, metrics)
            self.manager.remove_callback(self)

    manager = CallbackManager()
    manager.add_callback(OneShot(manager))
    manager.add_callback(EventRecorder("after", events))
    manager.on_batch_end(0, {})
    manager.on_batch_end(1, {})
    assert [(name, args["batch"]) for name, _, args in events] == [("once", 0), ("after", 0), ("after", 1)]


def test_a_callback_added_during_a_hook_runs_from_the_next_call() -> None:
    events: list[Event] = []

    class Spawner(BaseCallback):
        def __init__(self, manager: CallbackManager) -> None:
            self.manager = manager

        def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
            if epoch == 0:
                self.manager.add_callback(EventRecorder("new", events))

    manager = CallbackManager()
    manager.add_callback(Spawner(manager))
    manager.on_epoch_start(0)
    assert events == []
    manager.on_epoch_start(1)
    assert events == [("new", "on_epoch_start", {"epoch": 1})]


def test_direct_changes_of_the_callbacks_list_apply_from_the_next_call() -> None:
    events: list[Event] = []
    a, b, c = (EventRecorder(name, events) for name in "abc")
    manager = CallbackManager([a])

    def names_after_call() -> list[str]:
        events.clear()
        manager.on_train_start()
        return [name for name, _, _ in events]

    assert names_after_call() == ["a"]
    manager.callbacks.append(b)
    assert names_after_call() == ["a", "b"]
    manager.callbacks.insert(0, c)
    assert names_after_call() == ["c", "a", "b"]
    del manager.callbacks[0]
    assert names_after_call() == ["a", "b"]
    manager.callbacks[:] = [b, c]
    assert names_after_call() == ["b", "c"]
    manager.callbacks.reverse()
    assert names_after_call() == ["c", "b"]
    manager.callbacks += [a]
    assert names_after_call() == ["c", "b", "a"]
    manager.callbacks.pop()
    assert names_after_call() == ["c", "b"]
    manager.callbacks = [a]
    assert names_after_call() == ["a"]
    manager.callbacks.clear()
    assert names_after_call() == []


def test_an_invalid_item_put_into_the_list_directly_is_refused_at_the_next_hook_call() -> None:
    manager = CallbackManager()
    manager.callbacks.append("csv_logger")  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match=r"callbacks\[0\]: expected a BaseCallback instance, got str 'csv_logger'"):
        manager.on_train_start()
    with pytest.raises(TrainingError):
        manager._validate_callbacks()


# -- container protocol --------------------------------------------------------------------------------------------


def test_len_iter_contains_and_repr() -> None:
    class LoggingCallback(BaseCallback):
        pass

    class MetricsCallback(BaseCallback):
        pass

    first, second = LoggingCallback(), MetricsCallback()
    manager = CallbackManager([first, second])
    assert len(manager) == 2
    assert list(manager) == [first, second]
    assert first in manager
    assert LoggingCallback() not in manager
    assert repr(manager) == "CallbackManager(callbacks=[LoggingCallback, MetricsCallback])"
    assert repr(CallbackManager()) == "CallbackManager(callbacks=[])"
    assert manager.callbacks == [first, second]


def test_iterating_is_safe_while_callbacks_are_removed() -> None:
    class Plain(BaseCallback):
        pass

    callbacks = [Plain() for _ in range(3)]
    manager = CallbackManager(callbacks)
    for callback in manager:
        manager.remove_callback(callback)
    assert len(manager) == 0


def test_a_manager_survives_pickling_with_its_callbacks_in_order() -> None:
    manager = CallbackManager([Counter(), Counter()])
    manager.on_batch_end(0, {})
    copy = pickle.loads(pickle.dumps(manager))
    copy.on_batch_end(1, {})
    assert [callback.count for callback in copy] == [2, 2]
    copy.callbacks.append(Counter())
    copy.on_batch_end(2, {})
    assert [callback.count for callback in copy] == [3, 3, 1]


# -- state ---------------------------------------------------------------------------------------------------------


class Counter(BaseCallback):
    def __init__(self) -> None:
        self.count = 0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state_dict: Any) -> None:
        self.count = state_dict["count"]


class NamedCounter(Counter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @property
    def state_key(self) -> str:
        return f"NamedCounter[{self.name}]"


def test_manager_state_round_trip_restores_each_callback_by_state_key() -> None:
    manager = CallbackManager([NamedCounter("a"), NamedCounter("b"), DuckFreeStateless()])
    for batch in range(3):
        manager.on_batch_end(batch, {})
    saved = manager.state_dict()
    assert saved == {"NamedCounter[a]": {"count": 3}, "NamedCounter[b]": {"count": 3}}

    resumed = CallbackManager([NamedCounter("b"), NamedCounter("a")])
    resumed.load_state_dict(saved)
    assert [(c.name, c.count) for c in resumed] == [("b", 3), ("a", 3)]  # type: ignore[attr-defined]


class DuckFreeStateless(BaseCallback):
    pass


def test_two_stateful_callbacks_with_one_state_key_are_refused() -> None:
    first, second = Counter(), Counter()
    manager = CallbackManager([first, second])
    with pytest.raises(StateError, match="two stateful callbacks share the state_key 'Counter'") as caught:
        manager.state_dict()
    assert caught.value.callbacks == (first, second)


def test_stateless_callbacks_may_share_a_class() -> None:
    assert CallbackManager([DuckFreeStateless(), DuckFreeStateless()]).state_dict() == {}


def test_loading_state_nobody_claims_is_refused_unless_not_strict() -> None:
    manager = CallbackManager([Counter()])
    saved = {"Counter": {"count": 2}, "Gone": {"x": 1}}
    with pytest.raises(StateError, match=r"entries no registered callback claims: \['Gone'\]"):
        manager.load_state_dict(saved)
    manager.load_state_dict(saved, strict=False)
    assert next(iter(manager)).count == 2  # type: ignore[attr-defined]


def test_a_callback_refusing_its_state_is_named() -> None:
    manager = CallbackManager([Counter()])
    with pytest.raises(StateError, match=r"'Counter' could not load its state 'Counter': KeyError: 'count'") as caught:
        manager.load_state_dict({"Counter": {}})
    assert isinstance(caught.value.__cause__, KeyError)


def test_callbacks_missing_from_the_saved_state_keep_a_fresh_state() -> None:
    manager = CallbackManager([Counter()])
    manager.load_state_dict({})
    assert next(iter(manager)).count == 0  # type: ignore[attr-defined]
