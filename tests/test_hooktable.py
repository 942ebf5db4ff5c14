"""The manager under load: changes rebuild only what they touch, threads never see a stale or lost change, and the
memory a manager holds is bounded whatever the number of changes."""

from __future__ import annotations

import copy
import gc
import itertools
import linecache
import logging
import pickle
import sys
import threading
import time
import tracemalloc
import weakref
from typing import Any

import pytest
from altametris.sara.core import BaseCallback, CallbackManager
from altametris.sara.core.hookspecs import HOOKS


class EveryHook(BaseCallback):
    """Overrides every hook of the lifecycle."""


for _name, _spec in HOOKS.items():
    exec(  # one method per hook, with the hookspec's signature, written once
        f"def {_name}(self, {''.join(f'{arg}, ' for arg in _spec.argnames)}**kwargs): pass", globals(), _ns := {}
    )
    setattr(EveryHook, _name, _ns[_name])


class BatchEnd(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


class Probe(BaseCallback):
    """Records the ticket of every call it receives."""

    def __init__(self) -> None:
        self.tickets: list[int] = []

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.tickets.append(batch)


def _builds(manager: CallbackManager) -> int:
    return manager._table.builds


# -- cheap changes -----------------------------------------------------------------------------------------------------


def test_a_change_rebuilds_only_the_hooks_that_the_changed_callback_overrides() -> None:
    manager = CallbackManager([EveryHook() for _ in range(100)])
    before = _builds(manager)
    one = BatchEnd()
    manager.add_callback(one)
    assert _builds(manager) - before == 1
    manager.remove_callback(one)
    assert _builds(manager) - before == 2
    manager.callbacks.append(EveryHook())
    assert _builds(manager) - before == 2 + len(HOOKS)


def test_steady_hook_calls_build_nothing() -> None:
    manager = CallbackManager([EveryHook(), BatchEnd()])
    manager.on_train_start()
    before = _builds(manager)
    for batch in range(100):
        manager.on_batch_start(batch)
        manager.on_batch_end(batch, {})
    manager.on_train_end()
    assert _builds(manager) == before


def test_a_callback_that_adds_a_one_shot_callback_every_batch_rebuilds_one_hook_per_change() -> None:
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
    before = _builds(manager)
    for batch in range(50):
        manager.on_batch_start(batch)
        manager.on_batch_end(batch, {})
    assert _builds(manager) - before == 100  # on_batch_end once when added, once when removed
    assert len(manager) == 21


def test_a_hook_assigned_on_an_instance_after_registration_is_read_at_the_next_registration() -> None:
    seen: list[str] = []
    callback = BatchEnd()
    manager = CallbackManager([callback])
    callback.on_batch_end = lambda batch, metrics, **kwargs: seen.append("new")  # type: ignore[method-assign]
    manager.on_batch_end(0, {})
    assert seen == []  # the plan was made at registration (documented)
    manager.remove_callback(callback)
    manager.add_callback(callback)
    manager.on_batch_end(1, {})
    assert seen == ["new"]


# -- threads -----------------------------------------------------------------------------------------------------------


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


# -- memory ------------------------------------------------------------------------------------------------------------


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
    CallbackManager(callbacks[:10]).on_batch_end(0, {})  # warm the per-hook loops, created once per process
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
    assert len(linecache.cache) == lines


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
    assert held < 5 * 1024 * 1024, f"{held / 1024 / 1024:.1f} MB"  # 500 callbacks' plans, not 500 versions of code


# -- copies ------------------------------------------------------------------------------------------------------------


def test_a_copy_shares_no_run_position_and_has_its_own_dispatchers() -> None:
    manager = CallbackManager([BatchEnd()])
    manager.on_epoch_start(7)
    clone = copy.copy(manager)
    clone.on_epoch_start(2)
    assert manager._table.position == {"epoch": 7}
    assert clone._table.position == {"epoch": 2}
    clone.add_callback(Probe())
    assert len(manager) == 1
    assert len(clone) == 2


def test_a_manager_survives_pickle_and_deepcopy() -> None:
    manager = CallbackManager([BatchEnd(), Probe()])
    for clone in (pickle.loads(pickle.dumps(manager)), copy.deepcopy(manager)):
        clone.on_batch_end(5, {})
        assert clone.callbacks[1].tickets == [5]  # type: ignore[attr-defined]
        assert manager.callbacks[1].tickets == []  # type: ignore[attr-defined]


# -- debugging ---------------------------------------------------------------------------------------------------------


def test_debug_logging_tells_registrations_removals_rebuilds_and_stops_never_hook_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from altametris.sara.core import TrainingControl

    with caplog.at_level(logging.DEBUG, logger="altametris.sara.core.base_callback"):
        manager = CallbackManager([EveryHook()])
        one = BatchEnd()
        manager.add_callback(one)
        manager.remove_callback(one)
        TrainingControl().request_stop("patience ran out", source="early_stopping")
        before = len(caplog.records)
        for batch in range(100):
            manager.on_batch_end(batch, {})
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("callbacks registered: ['EveryHook']; removed: none; dispatchers rebuilt: [")
    assert messages[1] == (
        "callbacks registered: ['BatchEnd']; removed: none; dispatchers rebuilt: ['on_batch_end'], "
        "over 2 active callbacks"
    )
    assert messages[2] == (
        "callbacks registered: none; removed: ['BatchEnd']; dispatchers rebuilt: ['on_batch_end'], "
        "over 1 active callbacks"
    )
    assert messages[3] == "stop requested by early_stopping: patience ran out"
    assert len(caplog.records) == before  # hook calls log nothing


def test_nothing_is_logged_below_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="altametris.sara.core.base_callback"):
        manager = CallbackManager([EveryHook()])
        manager.add_callback(BatchEnd())
    assert caplog.records == []


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
    assert gone() is None  # no plan, dispatcher or table entry keeps it alive
