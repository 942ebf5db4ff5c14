"""The manager's hook methods (``core/_hookmethods.py``): one per hookspec, written from it, on the class, behaving
as any hand-written method would."""

from __future__ import annotations

import subprocess
import sys
import traceback
from typing import Any

import pytest
from altametris.sara.core import _hookmethods
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.hookspecs import HOOKS, HookSpec


class Recorder(BaseCallback):
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.seen.append(("with context", batch, metrics, kwargs))


class Plain(BaseCallback):
    def __init__(self, seen: list[tuple[Any, ...]]) -> None:
        self.seen = seen

    def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
        self.seen.append(("plain", batch, metrics))


class Boom(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
        raise ValueError("boom")


@pytest.mark.parametrize("name", list(HOOKS))
def test_each_hook_method_is_a_method_of_the_class_named_and_documented_from_its_hookspec(name: str) -> None:
    assert callable(getattr(CallbackManager, name))
    method = vars(CallbackManager)[name]
    assert method.__name__ == name
    assert method.__qualname__ == f"CallbackManager.{name}"
    assert HOOKS[name].doc in method.__doc__
    assert name not in vars(CallbackManager())  # nothing shadows it on an instance


def test_the_hookspecs_arguments_may_be_passed_by_position_or_by_name() -> None:
    recorder = Recorder()
    manager = CallbackManager([recorder])
    manager.on_batch_end(0, {"loss": 1.0})
    manager.on_batch_end(batch=1, metrics={"loss": 0.5})
    manager.on_batch_end(2, metrics={"loss": 0.25}, lr=0.1)
    assert recorder.seen == [
        ("with context", 0, {"loss": 1.0}, {}),
        ("with context", 1, {"loss": 0.5}, {}),
        ("with context", 2, {"loss": 0.25}, {"lr": 0.1}),
    ]


def test_a_missing_argument_is_a_type_error_as_for_any_method() -> None:
    with pytest.raises(TypeError, match="metrics"):
        CallbackManager().on_batch_end(0)  # type: ignore[call-arg]


def test_context_keywords_reach_the_callbacks_that_take_them_and_the_others_are_called_without() -> None:
    recorder = Recorder()
    manager = CallbackManager([Plain(recorder.seen), recorder, Plain(recorder.seen)])
    manager.on_batch_end(3, {}, model="m")
    manager.on_batch_end(4, {})
    assert recorder.seen == [
        ("plain", 3, {}),
        ("with context", 3, {}, {"model": "m"}),
        ("plain", 3, {}),
        ("plain", 4, {}),
        ("with context", 4, {}, {}),
        ("plain", 4, {}),
    ]


def test_a_failure_names_the_epoch_that_the_last_epoch_hook_received() -> None:
    manager = CallbackManager([Boom()])
    manager.on_epoch_start(4)
    with pytest.raises(TrainingError, match=r"epoch 4.*batch 2|batch 2.*epoch 4") as raised:
        manager.on_batch_end(2, {})
    assert isinstance(raised.value.__cause__, ValueError)


@pytest.mark.parametrize("context", [False, True])
def test_a_traceback_through_a_hook_method_shows_its_source_line(context: bool) -> None:
    manager = CallbackManager([Boom()])
    with pytest.raises(TrainingError) as raised:
        manager.on_batch_end(0, {}, **({"model": "m"} if context else {}))
    cause = raised.value.__cause__
    assert cause is not None
    frames = traceback.extract_tb(cause.__traceback__)
    own = [frame for frame in frames if frame.filename == "<sara CallbackManager.on_batch_end>"]
    assert own, [frame.filename for frame in frames]
    assert own[0].line == "call(batch, metrics)"


def test_the_hook_that_starts_a_run_starts_it_before_calling_the_callbacks() -> None:
    class Once(BaseCallback):
        on_error = "disable"

        def __init__(self) -> None:
            self.calls = 0

        def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
            self.calls += 1
            raise ValueError("disabled for the rest of the run")

    once = Once()
    manager = CallbackManager([once])
    manager.on_batch_end(0, {})
    manager.on_batch_end(1, {})
    manager.on_train_start()  # a new run: called again
    manager.on_batch_end(2, {})
    assert once.calls == 2


def test_a_hookspec_argument_that_would_shadow_the_loops_own_names_is_refused() -> None:
    clashing = HookSpec("on_something", ("batch", "calls"), "", False)
    with pytest.raises(TypeError, match=r"on_something.*\['calls'\].*rename"):
        _hookmethods.hook_method(clashing, CallbackManager)


def test_a_method_written_for_a_new_hookspec_calls_that_hooks_callbacks() -> None:
    spec = HookSpec("on_batch_end", ("batch", "metrics"), "A hook, documented.", False, "batch", "end")
    method = _hookmethods.hook_method(spec, CallbackManager)
    recorder = Recorder()
    method(CallbackManager([recorder]), 9, {"loss": 0.0})
    assert recorder.seen == [("with context", 9, {"loss": 0.0}, {})]
    assert "A hook, documented." in (method.__doc__ or "")


class FirstOnly(BaseCallback):
    """Names only the first argument of ``on_batch_end``."""

    def __init__(self, seen: list[object], *, fail_at: int | None = None) -> None:
        self.seen = seen
        self.fail_at = fail_at

    def on_batch_end(self, batch: int) -> None:  # type: ignore[override]
        if batch == self.fail_at:
            raise ValueError("no batch")
        self.seen.append((self, batch))


class FirstAndContext(BaseCallback):
    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    def on_batch_end(self, batch: int, **kwargs: object) -> None:  # type: ignore[override]
        self.seen.append((self, batch, kwargs))


def test_callbacks_that_all_name_only_the_first_argument_each_get_it_with_or_without_context() -> None:
    seen: list[object] = []
    first, second = FirstOnly(seen), FirstOnly(seen)
    manager = CallbackManager([first, second])
    manager.on_batch_end(1, {"loss": 0.5})
    manager.on_batch_end(2, {"loss": 0.5}, model="m")
    assert seen == [(first, 1), (second, 1), (first, 2), (second, 2)]


def test_callbacks_that_name_the_first_argument_and_kwargs_get_the_context_in_order_with_the_others() -> None:
    seen: list[object] = []
    takes, plain = FirstAndContext(seen), FirstOnly(seen)
    manager = CallbackManager([takes, plain])
    manager.on_batch_end(3, {}, model="m")
    manager.on_batch_end(4, {})
    assert seen == [(takes, 3, {"model": "m"}), (plain, 3), (takes, 4, {}), (plain, 4)]


def test_a_failure_among_callbacks_naming_only_the_first_argument_names_the_one_that_failed() -> None:
    seen: list[object] = []
    manager = CallbackManager([FirstOnly(seen), FirstOnly(seen, fail_at=5)])
    with pytest.raises(TrainingError, match=r"'FirstOnly' failed in on_batch_end \(batch 5\)") as caught:
        manager.on_batch_end(5, {})
    assert caught.value.callback is manager.callbacks[1]
    assert len(seen) == 1


@pytest.mark.parametrize("first", ["CallbackManager()", "CallbackManager.on_epoch_end"])
def test_importing_writes_no_hook_method_and_the_first_manager_or_read_writes_them_all(first: str) -> None:
    script = (
        "from altametris.sara.core.base_callback import CallbackManager\n"
        "from altametris.sara.core.hookspecs import HOOKS\n"
        "def written(): return sum(callable(vars(CallbackManager)[name]) for name in HOOKS)\n"
        f"before = written(); {first}\n"
        "method = vars(CallbackManager)['on_batch_end']\n"
        "print(before, written() == len(HOOKS), method is CallbackManager.on_batch_end)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert shown == "0 True True\n"  # none compiled by the import; then the class holds the functions themselves
