"""Steady hook calls never rebuild anything: the structural guard of the hot path, with no timing in it.

The manager decides how each callback is called (``plan_for``) and builds one dispatcher per hook
(``build_dispatcher``) when its callback list changes, then reuses them until the next change. These tests count
those builds, through spies that wrap the real functions, while hooks are called in every way a trainer calls them:
a build per call would make a hook call cost a compilation (a 230x slowdown once went unnoticed), and no timed test
is steady enough on a shared machine to see it. The speed itself is measured in ``benchmarks/``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable

import pytest
from altametris.sara.core import _dispatch
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.hookspecs import HOOKS
from altametris.sara.core.loop import fit


class Builds:
    """How many dispatchers (per hook) and call plans the manager built, counted by spies on the real functions."""

    def __init__(self) -> None:
        self.dispatchers: Counter[str] = Counter()
        self.plans = 0

    @property
    def total(self) -> int:
        return sum(self.dispatchers.values()) + self.plans


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    counted = Builds()
    build_dispatcher, plan_for = _dispatch.build_dispatcher, _dispatch.plan_for

    def counting_compile(hook: Any, *args: Any, **kwargs: Any) -> Any:
        counted.dispatchers[hook.name] += 1
        return build_dispatcher(hook, *args, **kwargs)

    def counting_plan(*args: Any) -> Any:
        counted.plans += 1
        return plan_for(*args)

    monkeypatch.setattr(_dispatch, "build_dispatcher", counting_compile)
    monkeypatch.setattr(_dispatch, "plan_for", counting_plan)
    return counted


class WithKwargs(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


class FewerArgs(BaseCallback):
    def on_batch_end(self, batch):  # type: ignore[no-untyped-def, override]
        pass

    def on_epoch_start(self, epoch):  # type: ignore[no-untyped-def, override]
        pass


class ByName(BaseCallback):
    """Takes a context keyword by name: called through an adapter."""

    def on_batch_start(self, batch: int, model: object = None) -> None:  # type: ignore[override]
        pass


class Tolerated(BaseCallback):
    on_error = "warn"

    def on_validation_end(self, metrics: dict[str, float], **kwargs: Any) -> None:
        raise ValueError("always")


class Everything(BaseCallback):
    def on_train_start(self, **kwargs: Any) -> None:
        pass

    def on_train_end(self, **kwargs: Any) -> None:
        pass

    def on_validation_start(self, **kwargs: Any) -> None:
        pass

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        pass


def _manager() -> CallbackManager:
    return CallbackManager([WithKwargs(), FewerArgs(), ByName(), Tolerated(), Everything(), WithKwargs()])


CALLS: dict[str, Callable[[CallbackManager], object]] = {
    "on_train_start": lambda manager: manager.on_train_start(model=None),
    "on_epoch_start": lambda manager: manager.on_epoch_start(0),
    "on_batch_start, context": lambda manager: manager.on_batch_start(1, model=None),
    "on_batch_start, keyword": lambda manager: manager.on_batch_start(batch=1),
    "on_batch_end, positional": lambda manager: manager.on_batch_end(1, {"loss": 0.5}),
    "on_batch_end, keyword": lambda manager: manager.on_batch_end(batch=1, metrics={"loss": 0.5}),
    "on_batch_end, context": lambda manager: manager.on_batch_end(1, {"loss": 0.5}, model=None, epochs=3),
    "on_batch_end by name": lambda manager: manager._execute_callback_hook("on_batch_end", 1, {"loss": 0.5}),
    "on_validation_start": lambda manager: manager.on_validation_start(),
    "on_validation_end (a tolerated failure)": lambda manager: manager.on_validation_end({"val_loss": 0.1}),
    "on_epoch_end": lambda manager: manager.on_epoch_end(0, {"loss": 0.5}, model=None),
    "on_exception": lambda manager: manager.on_exception(RuntimeError("boom")),
    "on_train_end": lambda manager: manager.on_train_end(),
}


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # the tolerated failures are logged on every call


def test_building_the_manager_builds_one_dispatcher_per_hook_and_the_first_call_nothing(builds: Builds) -> None:
    manager = _manager()
    assert builds.dispatchers == Counter(dict.fromkeys(HOOKS, 1))
    assert builds.plans > 0
    built = builds.total
    manager.on_batch_end(0, {})
    assert builds.total == built


@pytest.mark.parametrize("call", CALLS)
def test_a_steady_hook_call_builds_nothing(builds: Builds, call: str) -> None:
    manager = _manager()
    manager.on_train_start()
    built = builds.total
    for _ in range(50):
        CALLS[call](manager)
    assert builds.total == built, f"{call}: {builds.total - built} builds in 50 calls ({dict(builds.dispatchers)})"


def test_a_whole_training_builds_once_however_long_it_runs(builds: Builds) -> None:
    def train(epochs: int) -> tuple[int, int]:
        dispatchers, plans = sum(builds.dispatchers.values()), builds.plans
        fit(
            _manager(),
            epochs=epochs,
            data=lambda epoch: range(4),
            train_step=lambda batch: {"loss": 1.0 / (batch + 1)},
            validate=lambda: {"val_loss": 0.5},
            model=object(),
        )
        return sum(builds.dispatchers.values()) - dispatchers, builds.plans - plans

    short, long = train(1), train(20)
    assert short == long, f"1 epoch built {short} (dispatchers, plans), 20 epochs built {long}"
    assert short[0] == len(HOOKS)


def test_a_change_of_the_callbacks_rebuilds_the_hooks_it_touches_before_it_returns_then_never(builds: Builds) -> None:
    manager = _manager()
    manager.on_batch_end(0, {})
    manager.callbacks.append(WithKwargs())  # overrides on_batch_end and on_epoch_end
    touched = Counter(dict.fromkeys(HOOKS, 1)) + Counter(["on_batch_end", "on_epoch_end"])
    assert builds.dispatchers == touched, "a change rebuilds the hooks it touches, before it returns"
    for batch in range(20):
        manager.on_batch_end(batch, {})
    assert builds.dispatchers == touched


def test_a_new_run_rebuilds_only_when_a_callback_was_disabled(builds: Builds) -> None:
    class Disabled(BaseCallback):
        on_error = "disable"

        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            raise ValueError("once, then left out of the run")

    manager = CallbackManager([WithKwargs(), Disabled()])
    for _run in range(3):  # nothing disabled before a run starts: no rebuild at on_train_start
        manager.on_train_start()
        manager.on_epoch_end(0, {})
    assert builds.dispatchers == Counter(dict.fromkeys(HOOKS, 1))
    manager.on_batch_end(0, {})  # Disabled fails and leaves the run: the one hook it overrides is rebuilt
    for batch in range(20):
        manager.on_batch_end(batch, {})
    assert builds.dispatchers == Counter(dict.fromkeys(HOOKS, 1)) + Counter(["on_batch_end"])
    manager.on_train_start()  # a new run calls it again: every hook rebuilt once
    for batch in range(20):
        manager.on_epoch_end(batch, {})
    assert builds.dispatchers == Counter(dict.fromkeys(HOOKS, 2)) + Counter(["on_batch_end"])
