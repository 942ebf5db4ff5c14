"""How one callback's hook is called (``core/_calling.py``): with the arguments it names, as pluggy calls hook
implementations, taken from the hookspec's arguments and the trainer's context keywords."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from altametris.sara.core import _calling
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import MissingArgumentError, TrainingError
from altametris.sara.core.hookspecs import HOOKS


def _calls_of(method: Callable[..., object], hook: str = "on_epoch_end") -> list[tuple[Any, ...]]:
    """Register a callback whose ``hook`` is ``method`` (recording what it gets); call the hook with context."""
    seen: list[tuple[Any, ...]] = []
    namespace = {"seen": seen}
    callback_class = type("Callback", (BaseCallback,), {hook: method, "seen": seen, **namespace})
    manager = CallbackManager([callback_class()])
    manager.on_epoch_end(3, {"loss": 0.5}, model="m", control="c")
    return callback_class.seen  # type: ignore[attr-defined, no-any-return]


def test_a_method_with_the_hookspecs_arguments_gets_them_and_the_context_in_its_kwargs() -> None:
    def on_epoch_end(self: Any, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.seen.append((epoch, metrics, kwargs))

    assert _calls_of(on_epoch_end) == [(3, {"loss": 0.5}, {"model": "m", "control": "c"})]


def test_a_method_without_kwargs_gets_the_hookspecs_arguments_and_no_context() -> None:
    def on_epoch_end(self: Any, epoch: int, metrics: dict[str, float]) -> None:
        self.seen.append((epoch, metrics))

    assert _calls_of(on_epoch_end) == [(3, {"loss": 0.5})]


def test_a_method_that_names_fewer_arguments_gets_those_it_names() -> None:
    def on_epoch_end(self: Any, epoch: int) -> None:
        self.seen.append((epoch,))

    assert _calls_of(on_epoch_end) == [(3,)]


def test_a_method_that_names_the_arguments_in_another_order_gets_each_by_name() -> None:
    def on_epoch_end(self: Any, metrics: dict[str, float], epoch: int) -> None:
        self.seen.append((metrics, epoch))

    assert _calls_of(on_epoch_end) == [({"loss": 0.5}, 3)]


def test_keyword_only_arguments_and_context_keywords_are_passed_by_name() -> None:
    def on_epoch_end(self: Any, *, epoch: int, model: object = None) -> None:
        self.seen.append((epoch, model))

    assert _calls_of(on_epoch_end) == [(3, "m")]


def test_positional_only_arguments_are_passed_by_position() -> None:
    def on_epoch_end(self: Any, epoch: int, metrics: dict[str, float], /) -> None:
        self.seen.append((epoch, metrics))

    assert _calls_of(on_epoch_end) == [(3, {"loss": 0.5})]


def test_a_decorators_args_and_kwargs_get_the_hookspecs_arguments_by_position_and_the_context() -> None:
    def on_epoch_end(self: Any, *args: Any, **kwargs: Any) -> None:
        self.seen.append((args, kwargs))

    assert _calls_of(on_epoch_end) == [((3, {"loss": 0.5}), {"model": "m", "control": "c"})]


def test_an_optional_parameter_that_looks_like_a_misspelt_argument_is_accepted_and_left_to_its_default() -> None:
    class Optional(BaseCallback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, object]] = []

        def on_epoch_end(self, epoch: int, metric: object = None) -> None:  # type: ignore[override]
            self.seen.append((epoch, metric))

    callback = Optional()
    manager = CallbackManager([callback])  # no warning (warnings are errors here), no refusal
    manager.on_epoch_end(0, {"loss": 0.5}, model="m")
    manager._execute_callback_hook("on_epoch_end", 1, {"loss": 0.4})
    assert callback.seen == [(0, None), (1, None)]


def test_a_required_argument_the_trainer_did_not_pass_is_an_error_naming_the_callback_the_hook_and_the_name() -> None:
    class NeedsModel(BaseCallback):
        def on_batch_end(self, batch: int, model: object) -> None:  # type: ignore[override]
            pass

    manager = CallbackManager([NeedsModel()])
    with pytest.raises(MissingArgumentError, match=r"NeedsModel.*on_batch_end.*'model'.*passed 'batch', 'metrics'"):
        manager.on_batch_end(0, {})
    with pytest.raises(TrainingError, match="'model'") as raised:
        manager._execute_callback_hook("on_batch_end", 0)
    assert raised.value.hook == "on_batch_end"
    manager.on_batch_end(0, {}, model="m")  # passed as a context keyword: called


def test_one_function_given_to_two_callbacks_runs_once_for_each() -> None:
    seen: list[int] = []

    def on_batch_end(batch: int, metrics: dict[str, float]) -> None:
        seen.append(batch)

    first, second = BaseCallback(), BaseCallback()
    for callback in (first, second):
        callback.on_batch_end = on_batch_end  # type: ignore[method-assign]
    CallbackManager([first, second]).on_batch_end(4, {})
    assert seen == [4, 4]


# -- the entries themselves ------------------------------------------------------------------------------------------


class Direct(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


def test_a_method_with_the_hookspecs_parameters_is_its_own_entry_taking_the_context_only_with_kwargs() -> None:
    callback = Direct()
    batch_end = _calling.entry_for(callback, HOOKS["on_batch_end"])
    epoch_end = _calling.entry_for(callback, HOOKS["on_epoch_end"])
    assert (batch_end.call, batch_end.context) == (callback.on_batch_end, False)
    assert (epoch_end.call, epoch_end.context) == (callback.on_epoch_end, True)
    assert (batch_end.callback, batch_end.hook) == (callback, "on_batch_end")


def test_a_method_naming_only_the_first_arguments_is_called_directly_with_those() -> None:
    class Fewer(BaseCallback):
        def on_batch_end(self, batch: int) -> None:  # type: ignore[override]
            self.got = batch

    callback = Fewer()
    entry = _calling.entry_for(callback, HOOKS["on_batch_end"])
    assert (entry.call, entry.context, entry.arity) == (callback.on_batch_end, False, 1)


def test_any_other_method_is_called_through_an_adapter_that_takes_the_context() -> None:
    class Swapped(BaseCallback):
        def on_batch_end(self, metrics: dict[str, float], batch: int) -> None:  # type: ignore[override]
            self.got = (batch, metrics)

    callback = Swapped()
    entry = _calling.entry_for(callback, HOOKS["on_batch_end"])
    assert entry.call != callback.on_batch_end
    assert (entry.context, entry.arity) == (True, None)
    entry.call(5, {"loss": 1.0}, model="m")
    assert callback.got == (5, {"loss": 1.0})


def test_a_signature_is_read_once_per_function_not_once_per_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Once(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
            pass

    read: list[object] = []
    signature = _calling.inspect.signature

    def counting(function: Any, *args: Any, **kwargs: Any) -> Any:
        read.append(function)
        return signature(function, *args, **kwargs)

    monkeypatch.setattr(_calling.inspect, "signature", counting)
    CallbackManager([Once()])
    assert read
    read.clear()
    CallbackManager([Once() for _ in range(50)]).on_batch_end(0, {})
    assert read == []
