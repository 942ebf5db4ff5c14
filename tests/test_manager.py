"""The manager (``core/_manager.py``): its callback list under changes and threads, the memory it holds, its copies,
what it logs, what it builds and when, subclasses of it, and its error policies' run state.

Builds are counted by spies on the real ``entry_for`` and ``HookCalls`` (the structural guard of the hot path: a hook
call that built anything would cost a build per batch, and no timed test is steady enough on a shared machine to see
it; the speed itself is measured in ``benchmarks/``).
"""

from __future__ import annotations

import copy
import gc
import inspect
import itertools
import linecache
import logging
import pickle
import sys
import threading
import time
import tracemalloc
import types
import weakref
from collections import Counter
from typing import Any, Callable
from unittest import mock

import pytest
from altametris.sara.core import TrainingControl, _manager
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.hookspecs import HOOKS, hookimpl
from altametris.sara.core.loop import fit

LOGGER = "altametris.sara.core.base_callback"


class EveryHook(BaseCallback):
    """Overrides every hook of the lifecycle, each with its hookspec's signature."""


for _name, _spec in HOOKS.items():
    exec(  # one method per hook, with the hookspec's signature, written once
        f"def {_name}(self, {''.join(f'{arg}, ' for arg in _spec.argnames)}**kwargs): pass", globals(), _ns := {}
    )
    setattr(EveryHook, _name, _ns[_name])
del _name, _spec, _ns


class BatchEnd(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


class Probe(BaseCallback):
    """Records the batch number of every ``on_batch_end`` it receives."""

    def __init__(self) -> None:
        self.tickets: list[int] = []

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.tickets.append(batch)


class Failing(BaseCallback):
    """Fails at every ``on_batch_end`` and counts its calls."""

    def __init__(self, on_error: str = "raise") -> None:
        self.on_error = on_error  # type: ignore[assignment]
        self.calls = 0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls += 1
        raise ValueError(f"batch {batch}")


class Builds:
    """How many entries, and how many calls per hook, the manager built since the spies were set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.entries = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values()) + self.entries


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    counted = Builds()
    entry_for, hook_calls = _manager.entry_for, _manager.HookCalls

    def counting_entry_for(*args: Any) -> Any:
        counted.entries += 1
        return entry_for(*args)

    def counting_hook_calls(hook: str, entries: Any) -> Any:
        counted.calls[hook] += 1
        return hook_calls(hook, entries)

    monkeypatch.setattr(_manager, "entry_for", counting_entry_for)
    monkeypatch.setattr(_manager, "HookCalls", counting_hook_calls)
    return counted


EVERY_HOOK_ONCE = Counter(dict.fromkeys(HOOKS, 1))


# -- changes: applied before they return, seen by the next call ------------------------------------------------------


@pytest.mark.parametrize("how", ["add_callback", "callbacks.append", "callbacks setter"])
def test_a_change_is_applied_before_it_returns_and_seen_by_the_next_call(how: str) -> None:
    probe = Probe()
    manager = CallbackManager([BatchEnd()])
    if how == "add_callback":
        manager.add_callback(probe)
    elif how == "callbacks.append":
        manager.callbacks.append(probe)
    else:
        manager.callbacks = [*manager.callbacks, probe]
    manager.on_batch_end(1, {})
    manager.callbacks.remove(probe)
    manager.on_batch_end(2, {})
    assert probe.tickets == [1]


def test_a_running_call_finishes_over_the_list_as_it_was_and_the_next_call_sees_the_change() -> None:
    late = Probe()

    class Swapper(BaseCallback):
        def __init__(self, manager_of: Callable[[], CallbackManager]) -> None:
            self.manager_of = manager_of
            self.calls = 0

        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            self.calls += 1
            self.manager_of().remove_callback(self)
            self.manager_of().remove_callback(gone)
            self.manager_of().add_callback(late)

    gone = Probe()
    manager = CallbackManager()
    swapper = Swapper(lambda: manager)
    manager.callbacks = [swapper, gone]
    manager.on_batch_end(0, {})
    assert (swapper.calls, gone.tickets, late.tickets) == (1, [0], [])  # the call went on over the old list
    manager.on_batch_end(1, {})
    assert (swapper.calls, gone.tickets, late.tickets) == (1, [0], [1])


def test_something_invalid_put_in_the_list_directly_is_reported_at_the_next_hook_call() -> None:
    probe = Probe()
    manager = CallbackManager([probe])
    manager.callbacks.append("not a callback")  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match=r"callbacks\[1\].*'not a callback'"):
        manager.on_batch_end(0, {})
    with pytest.raises(TrainingError):
        manager.on_train_start()
    manager.callbacks.pop()
    manager.on_batch_end(1, {})
    assert probe.tickets == [1]


def test_a_hook_assigned_on_an_instance_after_registration_is_read_at_the_next_registration() -> None:
    seen: list[str] = []
    callback = BatchEnd()
    manager = CallbackManager([callback])
    callback.on_batch_end = lambda batch, metrics, **kwargs: seen.append("new")  # type: ignore[method-assign]
    manager.on_batch_end(0, {})
    assert seen == []  # a callback's hooks are read when it is registered (documented)
    manager.remove_callback(callback)
    manager.add_callback(callback)
    manager.on_batch_end(1, {})
    assert seen == ["new"]


# -- threads ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def fast_switching() -> Any:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.parametrize("how", ["add_callback", "callbacks list"])
def test_changes_from_another_thread_are_seen_by_the_next_call_never_lost_never_stale(
    fast_switching: None, how: str
) -> None:
    # Tickets order the events of the threads: the mutator takes one after a change returned and one before the next
    # change starts; a hook thread takes one before a call (passed as the batch, which the probe records) and one after.
    manager = CallbackManager([BatchEnd() for _ in range(20)])
    probe = Probe()
    ticket = itertools.count()
    registered: list[tuple[int, int]] = []  # (added: after the add returned, removing: before the removal started)
    unregistered: list[tuple[int, int]] = []  # (removed: after the removal returned, adding: before the next add)
    calls: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def let_calls_run() -> None:
        # Yield until the hook threads finished three more calls (one of them then lies wholly inside the window,
        # whatever the scheduler does), for a second at most: the changes race the calls around the window's edges.
        target, deadline = len(calls) + 3, time.monotonic() + 1.0
        while len(calls) < target and time.monotonic() < deadline:
            time.sleep(0)

    def mutate() -> None:
        try:
            removed = next(ticket)
            for _ in range(150):
                let_calls_run()  # a window in which hook calls run with the probe unregistered
                adding = next(ticket)
                unregistered.append((removed, adding))
                manager.add_callback(probe) if how == "add_callback" else manager.callbacks.append(probe)
                added = next(ticket)
                let_calls_run()  # a window in which hook calls run with the probe registered
                removing = next(ticket)
                registered.append((added, removing))
                manager.remove_callback(probe) if how == "add_callback" else manager.callbacks.remove(probe)
                removed = next(ticket)
        except BaseException as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)
        finally:
            done.set()

    def call() -> None:
        try:
            while not done.is_set():
                before = next(ticket)
                manager.on_batch_end(before, {})
                calls.append((before, next(ticket)))
        except BaseException as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=mutate), threading.Thread(target=call), threading.Thread(target=call)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    seen = set(probe.tickets)
    inside = [c for c in calls if any(start < c[0] and c[1] < end for start, end in registered)]
    outside = [c for c in calls if any(start < c[0] and c[1] < end for start, end in unregistered)]
    assert len(inside) > 50, len(inside)  # the windows were exercised
    assert len(outside) > 50, len(outside)
    lost = [c for c in inside if c[0] not in seen]
    stale = [c for c in outside if c[0] in seen]
    assert not lost, f"{len(lost)} of {len(inside)} calls made while the probe was registered missed it"
    assert not stale, f"{len(stale)} of {len(outside)} calls made while it was not registered reached it"
    assert len(manager) == 20


def test_hooks_may_be_called_from_two_threads_at_once(fast_switching: None) -> None:
    counted = Probe()
    manager = CallbackManager([counted, *(BatchEnd() for _ in range(5))])
    errors: list[BaseException] = []

    def call(offset: int) -> None:
        try:
            for batch in range(5000):
                manager.on_batch_end(offset + batch, {})
        except BaseException as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=call, args=(offset,)) for offset in (0, 100_000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(counted.tickets) == [*range(5000), *range(100_000, 105_000)]


# -- memory ----------------------------------------------------------------------------------------------------------


def test_a_dropped_manager_is_freed_at_once_without_the_cycle_collector() -> None:
    gc.disable()
    try:
        manager = CallbackManager([EveryHook(), BatchEnd()])
        manager.on_train_start()
        manager.on_batch_end(0, {})
        gone = weakref.ref(manager)
        del manager
        assert gone() is None
    finally:
        gc.enable()


def test_memory_returns_to_where_it_started_after_a_thousand_managers_of_growing_size() -> None:
    callbacks = [EveryHook() for _ in range(100)]
    CallbackManager(callbacks[:10]).on_batch_end(0, {})  # warm what is made once per process
    lines = len(linecache.cache)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for size in range(1000):
            manager = CallbackManager(callbacks[: size % 100])
            manager.add_callback(BatchEnd())
            manager.on_batch_end(size, {})
            del manager
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert end - start < 5 * 1024 * 1024, f"{(end - start) / 1024 / 1024:.1f} MB still held"
    assert len(linecache.cache) == lines  # no source is written per manager


def test_adding_five_hundred_callbacks_one_at_a_time_holds_no_more_than_the_last_state() -> None:
    manager = CallbackManager()
    tracemalloc.start()
    try:
        for _ in range(500):
            manager.add_callback(BatchEnd())
            manager.on_batch_end(0, {})
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 5 * 1024 * 1024, f"{held / 1024 / 1024:.1f} MB"


def test_a_thousand_changes_leave_the_manager_holding_what_one_does() -> None:
    manager = CallbackManager([EveryHook() for _ in range(10)])
    for _ in range(10):
        manager.add_callback(probe := Probe())
        manager.remove_callback(probe)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for batch in range(1000):
            manager.add_callback(probe := Probe())
            manager.on_batch_end(batch, {})
            manager.remove_callback(probe)
        del probe
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert end - start < 64 * 1024, f"{(end - start) / 1024:.0f} kB held after 1000 changes"


def test_a_removed_callback_is_released_even_when_another_is_registered_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    class RankZeroOnly(BatchEnd):
        rank_zero_only = True

    monkeypatch.setenv("RANK", "1")  # rank 1 of 2: the rank-zero-only callback does not run here
    monkeypatch.setenv("WORLD_SIZE", "2")
    kept, leaving = BatchEnd(), RankZeroOnly()
    manager = CallbackManager([kept, kept, leaving])
    gone = weakref.ref(leaving)
    manager.remove_callback(leaving)
    del leaving
    assert gone() is None


# -- copies ----------------------------------------------------------------------------------------------------------

COPIES: dict[str, Callable[[CallbackManager], CallbackManager]] = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda manager: pickle.loads(pickle.dumps(manager)),
}


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_shares_no_run_state_with_its_original(how: str) -> None:
    failing = Failing()
    tolerated = Failing("disable")
    manager = CallbackManager([tolerated, failing])
    manager.on_epoch_start(7)
    with pytest.raises(TrainingError):
        manager.on_batch_end(0, {})
    assert [type(cb).__name__ for cb in manager.disabled] == ["Failing"]
    clone = COPIES[how](manager)
    assert clone.disabled == ()  # a copy starts a new run
    clone.on_epoch_start(2)
    with pytest.raises(TrainingError, match="epoch 2") as raised:
        clone.on_batch_end(1, {})
    assert raised.value.callback is clone.callbacks[1]
    assert clone.callbacks[0] in clone.disabled  # the copy's own policy state
    with pytest.raises(TrainingError, match="epoch 7"):  # the original's epoch is its own
        manager.on_batch_end(1, {})
    clone.add_callback(Probe())
    assert (len(manager), len(clone)) == (2, 3)


def test_a_copy_calls_its_own_callbacks_and_the_original_its_own() -> None:
    manager = CallbackManager([BatchEnd(), Probe()])
    for clone in (pickle.loads(pickle.dumps(manager)), copy.deepcopy(manager)):
        clone.on_batch_end(5, {})
        assert clone.callbacks[1].tickets == [5]  # type: ignore[attr-defined]
        assert manager.callbacks[1].tickets == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_of_a_profiling_manager_keeps_profiling(how: str) -> None:
    manager = CallbackManager([Probe()], profile=True)
    clone = COPIES[how](manager)
    clone.on_train_start()
    clone.on_batch_end(0, {})
    assert clone.timings is not None
    assert [(row.callback, row.hook, row.calls) for row in clone.timings.rows] == [("Probe", "on_batch_end", 1)]


# -- debug logging ---------------------------------------------------------------------------------------------------


def test_debug_logging_tells_registrations_removals_and_stops_never_hook_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        manager = CallbackManager([EveryHook()])
        one = BatchEnd()
        manager.add_callback(one)
        manager.remove_callback(one)
        TrainingControl().request_stop("patience ran out", source="early_stopping")
        before = len(caplog.records)
        manager.on_train_start()
        for batch in range(100):
            manager.on_batch_start(batch)
            manager.on_batch_end(batch, {}, model=None)
        manager.on_train_end()
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("callbacks registered: ['EveryHook']; removed: none; hooks rebuilt: [")
    assert messages[1:4] == [
        "callbacks registered: ['BatchEnd']; removed: none; hooks rebuilt: ['on_batch_end'], over 2 active callbacks",
        "callbacks registered: none; removed: ['BatchEnd']; hooks rebuilt: ['on_batch_end'], over 1 active callbacks",
        "stop requested by early_stopping: patience ran out",
    ]
    assert len(caplog.records) == before  # hook calls log nothing


def test_nothing_is_logged_below_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        manager = CallbackManager([EveryHook()])
        manager.add_callback(one := BatchEnd())
        manager.remove_callback(one)
        manager.on_batch_end(0, {})
    assert caplog.records == []


# -- what is built, and when -----------------------------------------------------------------------------------------


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


class RunHooks(BaseCallback):
    def on_train_start(self, **kwargs: Any) -> None:
        pass

    def on_train_end(self, **kwargs: Any) -> None:
        pass

    def on_validation_start(self, **kwargs: Any) -> None:
        pass

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        pass


def _mixed() -> CallbackManager:
    return CallbackManager([WithKwargs(), FewerArgs(), ByName(), Tolerated(), RunHooks(), WithKwargs()])


CALLS: dict[str, Callable[[CallbackManager], object]] = {
    "on_train_start": lambda manager: manager.on_train_start(model=None),
    "on_epoch_start": lambda manager: manager.on_epoch_start(0),
    "on_batch_start, context": lambda manager: manager.on_batch_start(1, model=None),
    "on_batch_start, keyword": lambda manager: manager.on_batch_start(batch=1),
    "on_batch_end, positional": lambda manager: manager.on_batch_end(1, {"loss": 0.5}),
    "on_batch_end, keyword": lambda manager: manager.on_batch_end(batch=1, metrics={"loss": 0.5}),
    "on_batch_end, context": lambda manager: manager.on_batch_end(1, {"loss": 0.5}, model=None, epochs=3),
    "on_batch_end by name": lambda manager: manager._execute_callback_hook("on_batch_end", 1, {"loss": 0.5}),
    "on_validation_end by name, an argument missing": lambda manager: manager._execute_callback_hook(
        "on_validation_end"
    ),
    "on_validation_start": lambda manager: manager.on_validation_start(),
    "on_validation_end (a tolerated failure)": lambda manager: manager.on_validation_end({"val_loss": 0.1}),
    "on_epoch_end": lambda manager: manager.on_epoch_end(0, {"loss": 0.5}, model=None),
    "on_exception": lambda manager: manager.on_exception(RuntimeError("boom")),
    "on_train_end": lambda manager: manager.on_train_end(),
}


def test_building_the_manager_builds_each_hook_once_and_the_first_call_nothing(builds: Builds) -> None:
    manager = _mixed()
    assert builds.calls == EVERY_HOOK_ONCE
    assert builds.entries == 2 + 2 + 1 + 1 + 4 + 2  # one per hook a callback overrides
    built = builds.total
    manager.on_batch_end(0, {})
    assert builds.total == built


@pytest.mark.parametrize("call", CALLS)
def test_a_steady_hook_call_builds_nothing(builds: Builds, call: str) -> None:
    manager = _mixed()
    manager.on_train_start()
    built = builds.total
    for _ in range(50):
        CALLS[call](manager)
    assert builds.total == built, f"{call}: {builds.total - built} builds in 50 calls ({dict(builds.calls)})"


def test_a_whole_training_builds_once_however_long_it_runs(builds: Builds) -> None:
    def train(epochs: int) -> tuple[int, int]:
        calls, entries = sum(builds.calls.values()), builds.entries
        fit(
            _mixed(),
            epochs=epochs,
            data=lambda epoch: range(4),
            train_step=lambda batch: {"loss": 1.0 / (batch + 1)},
            validate=lambda: {"val_loss": 0.5},
            model=object(),
        )
        return sum(builds.calls.values()) - calls, builds.entries - entries

    short, long = train(1), train(20)
    assert short == long, f"1 epoch built {short} (hook calls, entries), 20 epochs built {long}"
    assert short[0] == len(HOOKS)


def test_a_change_rebuilds_only_the_hooks_that_the_changed_callback_overrides(builds: Builds) -> None:
    manager = CallbackManager([EveryHook() for _ in range(100)])
    before = builds.calls.copy()
    one = BatchEnd()
    manager.add_callback(one)
    assert builds.calls - before == Counter(["on_batch_end"])
    assert builds.entries == 100 * len(HOOKS) + 1  # the other callbacks' entries are not made again
    manager.remove_callback(one)
    assert builds.calls - before == Counter(["on_batch_end"] * 2)
    manager.callbacks.append(WithKwargs())
    assert builds.calls - before == Counter(["on_batch_end"] * 3 + ["on_epoch_end"])


def test_a_change_of_the_callbacks_rebuilds_the_hooks_it_touches_before_it_returns_then_never(builds: Builds) -> None:
    manager = _mixed()
    manager.on_batch_end(0, {})
    manager.callbacks.append(WithKwargs())  # overrides on_batch_end and on_epoch_end
    touched = EVERY_HOOK_ONCE + Counter(["on_batch_end", "on_epoch_end"])
    assert builds.calls == touched, "a change rebuilds the hooks it touches, before it returns"
    for batch in range(20):
        manager.on_batch_end(batch, {})
        manager.on_epoch_end(0, {})
    assert builds.calls == touched


def test_a_callback_that_adds_a_one_shot_callback_every_batch_rebuilds_one_hook_per_change(builds: Builds) -> None:
    class OneShot(BaseCallback):
        def __init__(self, manager: CallbackManager) -> None:
            self.manager = manager

        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            self.manager.remove_callback(self)

    class Spawner(BaseCallback):
        def __init__(self) -> None:
            self.manager: CallbackManager | None = None

        def on_batch_start(self, batch: int, **kwargs: Any) -> None:
            assert self.manager is not None
            self.manager.add_callback(OneShot(self.manager))

    spawner = Spawner()
    manager = CallbackManager([spawner, *(EveryHook() for _ in range(20))])
    spawner.manager = manager
    before = builds.calls.copy()
    for batch in range(50):
        manager.on_batch_start(batch)
        manager.on_batch_end(batch, {})
    assert builds.calls - before == Counter({"on_batch_end": 100})  # once when added, once when removed
    assert len(manager) == 21


def test_a_new_run_rebuilds_only_when_a_callback_was_disabled(builds: Builds) -> None:
    manager = CallbackManager([WithKwargs(), Failing("disable")])
    for _run in range(3):  # nothing disabled before a run starts: no rebuild at on_train_start
        manager.on_train_start()
        manager.on_epoch_end(0, {})
    assert builds.calls == EVERY_HOOK_ONCE
    manager.on_batch_end(0, {})  # Failing fails and leaves the run: the one hook it overrides is rebuilt
    for batch in range(20):
        manager.on_batch_end(batch, {})
    assert builds.calls == EVERY_HOOK_ONCE + Counter(["on_batch_end"])
    manager.on_train_start()  # a new run calls it again: every hook rebuilt once
    for batch in range(20):
        manager.on_epoch_end(batch, {})
    assert builds.calls == Counter(dict.fromkeys(HOOKS, 2)) + Counter(["on_batch_end"])


# -- subclasses ------------------------------------------------------------------------------------------------------


class CountingManager(CallbackManager):
    """Overrides one hook method, then calls the manager's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, dict[str, float], dict[str, Any]]] = []

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.seen.append((batch, metrics, kwargs))
        super().on_batch_end(batch, metrics, **kwargs)


def test_a_subclass_overriding_a_hook_method_runs_and_reaches_the_callbacks_through_super() -> None:
    probe = Probe()
    manager = CountingManager([probe])
    manager.on_batch_end(3, {"loss": 1.0}, model="m")
    assert manager.seen == [(3, {"loss": 1.0}, {"model": "m"})]
    assert probe.tickets == [3]


def test_a_hook_call_by_name_goes_through_the_subclass_override() -> None:
    probe = Probe()
    manager = CountingManager([probe])
    manager._execute_callback_hook("on_batch_end", 4, {"loss": 0.5})
    assert [seen[0] for seen in manager.seen] == [4]
    assert probe.tickets == [4]


def test_fit_driving_a_subclass_goes_through_its_override() -> None:
    probe = Probe()
    manager = CountingManager([probe])
    fit(manager, epochs=2, data=lambda epoch: range(3), train_step=lambda batch: {"loss": 0.5}, model=object())
    assert [seen[0] for seen in manager.seen] == [0, 1, 2, 0, 1, 2]
    assert "control" in manager.seen[0][2]  # the trainer's context reaches the override
    assert probe.tickets == [0, 1, 2, 0, 1, 2]


def test_mock_patch_object_intercepts_the_trainers_calls() -> None:
    probe = Probe()
    manager = CallbackManager([probe])
    with mock.patch.object(manager, "on_batch_end") as patched:
        fit(manager, epochs=1, data=lambda epoch: range(2), train_step=lambda batch: {"loss": 0.5}, model=object())
    assert [call.args[0] if call.args else call.kwargs["batch"] for call in patched.call_args_list] == [0, 1]
    assert probe.tickets == []
    manager.on_batch_end(7, {})  # the class's method again, once the patch is gone
    assert probe.tickets == [7]


@pytest.mark.parametrize("name", list(HOOKS))
def test_inspect_signature_of_a_hook_method_is_the_hookspecs(name: str) -> None:
    parameters = list(inspect.signature(getattr(CallbackManager(), name)).parameters.values())
    assert [parameter.name for parameter in parameters] == [*HOOKS[name].argnames, "kwargs"]
    assert [parameter.kind for parameter in parameters[:-1]] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(
        HOOKS[name].argnames
    )
    assert parameters[-1].kind is inspect.Parameter.VAR_KEYWORD


def test_the_signature_of_on_batch_end_reads_batch_metrics_kwargs() -> None:
    assert str(inspect.signature(CallbackManager().on_batch_end)) == "(batch, metrics, **kwargs)"


# -- error policies across changes (each test guards a behaviour no other test did) ----------------------------------


def test_a_disabled_callback_stays_skipped_after_another_callback_is_added_in_the_same_run() -> None:
    failing = Failing("disable")
    manager = CallbackManager([failing])
    manager.on_train_start()
    manager.on_batch_end(0, {})
    manager.add_callback(probe := Probe())
    manager.on_batch_end(1, {})
    manager.remove_callback(probe)
    manager.on_batch_end(2, {})
    assert failing.calls == 1
    assert manager.disabled == (failing,)
    assert probe.tickets == [1]


def test_removing_a_disabled_callback_drops_it_from_disabled_and_frees_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger=LOGGER)  # a captured record would keep the callback alive
    failing = Failing("disable")
    manager = CallbackManager([BatchEnd(), failing])
    manager.on_batch_end(0, {})
    assert manager.disabled == (failing,)
    gone = weakref.ref(failing)
    manager.remove_callback(failing)
    del failing
    assert manager.disabled == ()
    assert gone() is None


def test_a_policy_made_invalid_after_registration_still_raises_the_failure() -> None:
    failing = Failing("warn")
    manager = CallbackManager([failing])
    failing.on_error = "bogus"  # type: ignore[assignment]
    with pytest.raises(TrainingError, match=r"Failing.*on_batch_end") as raised:
        manager.on_batch_end(0, {})
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_pluggy_module_registered_twice_blames_and_disables_the_registration_that_failed() -> None:
    calls = itertools.count()

    @hookimpl
    def on_batch_end(batch: int, metrics: dict[str, float]) -> None:  # the hookspec's: one function, called directly
        if next(calls) % 2 == 1:  # the second registration's call, in every hook call
            raise ValueError("the second one fails")

    module = types.ModuleType("sara_test_twice")
    module.on_batch_end = on_batch_end  # type: ignore[attr-defined]
    manager = CallbackManager()
    first = manager.register(module, on_error="disable")
    second = manager.register(module, on_error="disable")
    manager.on_batch_end(0, {})
    assert manager.disabled == (second,)
    assert first not in manager.disabled
    manager.on_batch_end(1, {})  # the first one goes on alone: count 2, which does not fail
    assert next(calls) == 3


def test_a_pluggy_module_registered_twice_names_the_failing_registration_in_the_error() -> None:
    calls = itertools.count()

    @hookimpl
    def on_batch_end(batch: int, metrics: dict[str, float]) -> None:
        if next(calls) == 1:
            raise ValueError("the second one fails")

    module = types.ModuleType("sara_test_twice")
    module.on_batch_end = on_batch_end  # type: ignore[attr-defined]
    manager = CallbackManager()
    manager.register(module, name="first")
    second = manager.register(module, name="second")
    with pytest.raises(TrainingError, match="second") as raised:
        manager.on_batch_end(0, {})
    assert raised.value.callback is second


class Tagged(CallbackManager):
    """A trainer's subclass with an attribute of its own."""

    def __init__(self, callbacks: list[BaseCallback], tag: str) -> None:
        super().__init__(callbacks)
        self.tag = tag


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_a_copy_keeps_a_subclass_attribute_and_makes_the_managers_own_state_anew(how: str) -> None:
    original = Tagged([BatchEnd()], tag="run-7")
    copied = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": lambda m: pickle.loads(pickle.dumps(m))}[how](
        original
    )
    assert copied.tag == "run-7"
    assert set(vars(copied)) == set(vars(original))  # every piece of the manager's own state made anew, nothing lost


def test_what_a_copy_makes_anew_is_exactly_what_a_new_manager_holds() -> None:
    # global_step is the training's progress, as the callbacks' state: a copy keeps it
    assert set(vars(CallbackManager())) == {*_manager._TRANSIENT, "global_step"}
