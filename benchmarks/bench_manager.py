"""The manager under load: steady dispatch at 1 to 1,000 callbacks, changes, a list changed every batch, memory.

Targets (issue 12), each a ratio measured side by side in one run:

* steady ``on_batch_end`` with context keywords, at N = 1, 5, 20, 100 and 1,000 callbacks: at most 1.1x a
  hand-written loop over the same bound methods (pluggy and a naive ``getattr`` manager are timed beside them, without
  a target, for the plot of the benchmarks page);
* the first call after a change at N = 100 callbacks that override every hook (one change, then one hook call):
  at most 100x one steady call at that size;
* a batch (``on_batch_start`` and ``on_batch_end``) of a training whose callback adds a one-shot callback that removes
  itself (two changes a batch): at most 10x the same batch without that churn;
* memory: what stays allocated after building, calling and dropping 1,000 managers of 0 to 99 callbacks, at most
  what one live manager of 100 callbacks holds (tracemalloc);
* triggers (issue 17): a batch of a training with 5 callbacks plus one under ``when="100ba"``, at most 1.1x the same
  batch without that callback registered;
* timings (issue 17): ``on_batch_end`` of 5 callbacks that each read the loss (the least a logger does), timed
  (``profile=True``), at most 2x the same call untimed; the same with callbacks that do nothing is measured too, as
  the worst case, without a target.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.hookspecs import HOOKS

from ._harness import Budget, Case, Measured, Samples, Target, timed
from .bench_dispatch import NaiveManager, _pluggy

STEADY, CHANGE, CHURN, MEMORY, TRIGGERED, PROFILED = 1.1, 100.0, 10.0, 1.0, 1.1, 2.0


class EveryHook(BaseCallback):
    """Overrides every hook, each taking the hookspec's arguments and ``**kwargs``."""


for _name, _spec in HOOKS.items():
    _namespace: dict[str, Any] = {}
    exec(f"def {_name}(self, {''.join(f'{arg}, ' for arg in _spec.argnames)}**kwargs): pass", _namespace)
    setattr(EveryHook, _name, _namespace[_name])


class OneShot(BaseCallback):
    """Removes itself at its first batch end."""

    def __init__(self, manager: CallbackManager) -> None:
        self.manager = manager

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.manager.remove_callback(self)


class Spawner(BaseCallback):
    """Adds a one-shot callback at every batch start."""

    def __init__(self) -> None:
        self.manager: CallbackManager | None = None

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        if self.manager is not None:
            self.manager.add_callback(OneShot(self.manager))


def _steady(count: int) -> Case:
    def measure(budget: Budget) -> Samples:
        callbacks = [EveryHook() for _ in range(count)]
        methods = [callback.on_batch_end for callback in callbacks]

        def loop(batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            for method in methods:
                method(batch, metrics, **kwargs)

        namespace = {
            "manager": CallbackManager(callbacks),
            "loop": loop,
            "naive": NaiveManager(callbacks),
            "hook": _pluggy(count),
            "met": {"loss": 0.5},
            "c": None,
        }
        return timed(
            {
                "sara": "manager.on_batch_end(1, met, control=c)",
                "hand-written loop": "loop(1, met, control=c)",
                # No target: drawn beside the others on the benchmarks page (pluggy's hook takes no context keyword).
                "pluggy pm.hook": "hook.on_batch_end(batch=1, metrics=met)",
                "naive getattr manager": "naive.on_batch_end(1, met, control=c)",
            },
            namespace,
            budget,
        )

    return Case(
        "manager",
        f"steady on_batch_end, {count} callback{'s' if count != 1 else ''}, context keywords",
        measure,
        (Target("sara", "hand-written loop", STEADY),),
        quick=count <= 100,
    )


def _first_call_after_a_change(budget: Budget) -> Samples:
    manager = CallbackManager([EveryHook() for _ in range(100)])
    extra = EveryHook()
    state = {"added": False}

    def change_then_call() -> None:  # an add or a removal, alternately: one change, then one call
        if state["added"]:
            manager.remove_callback(extra)
        else:
            manager.add_callback(extra)
        state["added"] = not state["added"]
        manager.on_batch_end(1, metrics, control=None)

    metrics = {"loss": 0.5}
    namespace = {"manager": manager, "change_then_call": change_then_call, "met": metrics}
    return timed(
        {
            "a change, then the first call": "change_then_call()",
            "a steady call": "manager.on_batch_end(1, met, control=None)",
        },
        namespace,
        budget,
    )


def _churn(budget: Budget) -> Samples:
    spawner = Spawner()
    churning = CallbackManager([spawner, *(EveryHook() for _ in range(5))])
    spawner.manager = churning
    steady = CallbackManager([Spawner(), *(EveryHook() for _ in range(5))])  # its spawner has no manager: no churn

    def batch(manager: CallbackManager) -> None:
        manager.on_batch_start(1, control=None)
        manager.on_batch_end(1, metrics, control=None)

    probe = OneShot(steady)  # overrides on_batch_end only, as the one-shot callbacks do (it is never called here)

    def two_changes() -> None:
        steady.add_callback(probe)
        steady.remove_callback(probe)

    metrics = {"loss": 0.5}
    namespace = {"batch": batch, "churning": churning, "steady": steady, "two_changes": two_changes}
    return timed(
        {
            "a batch adding and removing a one-shot callback": "batch(churning)",
            "a steady batch": "batch(steady)",
            "probe: add_callback and remove_callback, no hook call": "two_changes()",
        },
        namespace,
        budget,
    )


def _explain_churn(measured: Measured, target: Target) -> str:
    changes = measured.best("probe: add_callback and remove_callback, no hook call")
    batch = measured.best(target.baseline)
    return (
        f"the two changes alone cost {changes:.1f} us, {changes / batch:.1f}x a steady batch of {batch:.2f} us: each "
        "change validates the new callback, plans it and rebuilds the one hook it overrides, before it returns"
    )


def _memory(budget: Budget) -> Samples:
    callbacks = [EveryHook() for _ in range(100)]
    CallbackManager(callbacks[:10]).on_batch_end(0, {})  # the per-hook loops exist once per process: made before
    held: list[float] = []
    one: list[float] = []
    for _ in range(3 if budget.quick else 5):
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for size in range(1000):
                manager = CallbackManager(callbacks[: size % 100])
                manager.on_batch_end(size, {})
                del manager
            gc.collect()
            held.append(max(1.0, tracemalloc.get_traced_memory()[0] - start))
            before = tracemalloc.get_traced_memory()[0]
            live = CallbackManager(callbacks)
            live.on_batch_end(0, {})
            one.append(tracemalloc.get_traced_memory()[0] - before)
            del live
        finally:
            tracemalloc.stop()
    return {"held after 1,000 managers were dropped": held, "one live manager of 100 callbacks": one}


def _triggered(budget: Budget) -> Samples:
    without = CallbackManager([EveryHook() for _ in range(5)])
    triggered = CallbackManager([EveryHook() for _ in range(5)])
    triggered.add_callback(EveryHook(), when="100ba")
    triggered.on_epoch_start(0)
    without.on_epoch_start(0)

    def batch(manager: CallbackManager) -> None:
        manager.on_batch_start(1, control=None)
        manager.on_batch_end(1, metrics, control=None)

    metrics = {"loss": 0.5}
    namespace = {"batch": batch, "triggered": triggered, "without": without}
    return timed(
        {
            "a batch, 5 callbacks and one under every 100 batches": "batch(triggered)",
            "a batch, the 5 callbacks only": "batch(without)",
        },
        namespace,
        budget,
    )


class ReadsTheLoss(BaseCallback):
    """Keeps the batch's loss: the least work a logger or an early stopping does at a batch end."""

    last = 0.0

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.last = metrics["loss"]


def _profiled(budget: Budget) -> Samples:
    plain = CallbackManager([ReadsTheLoss() for _ in range(5)])
    timed_ = CallbackManager([ReadsTheLoss() for _ in range(5)], profile=True)
    noop, noop_timed = (CallbackManager([EveryHook() for _ in range(5)], profile=on) for on in (False, True))
    namespace = {"plain": plain, "timed_": timed_, "noop": noop, "noop_timed": noop_timed, "met": {"loss": 0.5}}
    return timed(
        {
            "on_batch_end, 5 callbacks reading the loss, timed": "timed_.on_batch_end(1, met, control=None)",
            "on_batch_end, 5 callbacks reading the loss": "plain.on_batch_end(1, met, control=None)",
            "worst case: 5 callbacks doing nothing, timed": "noop_timed.on_batch_end(1, met, control=None)",
            "worst case: 5 callbacks doing nothing": "noop.on_batch_end(1, met, control=None)",
        },
        namespace,
        budget,
    )


def cases(budget: Budget) -> list[Case]:
    """The manager's cases: steady dispatch at each size, a change, churn, memory."""
    return [
        *(_steady(count) for count in (1, 5, 20, 100, 1000)),
        Case(
            "manager",
            "the first call after a change, 100 callbacks overriding every hook",
            _first_call_after_a_change,
            (Target("a change, then the first call", "a steady call", CHANGE),),
        ),
        Case(
            "manager",
            "a callback list changed inside a hook every batch (6 callbacks)",
            _churn,
            (Target("a batch adding and removing a one-shot callback", "a steady batch", CHURN),),
            explain=_explain_churn,
        ),
        Case(
            "manager",
            "memory after building and dropping 1,000 managers of 0-99 callbacks",
            _memory,
            (Target("held after 1,000 managers were dropped", "one live manager of 100 callbacks", MEMORY),),
            unit="bytes",
        ),
        Case(
            "manager",
            "a callback under a trigger (every 100 batches) against not registering it",
            _triggered,
            (
                Target(
                    "a batch, 5 callbacks and one under every 100 batches", "a batch, the 5 callbacks only", TRIGGERED
                ),
            ),
        ),
        Case(
            "manager",
            "timings on (profile=True) against off, on_batch_end of 5 callbacks",
            _profiled,
            (
                Target(
                    "on_batch_end, 5 callbacks reading the loss, timed",
                    "on_batch_end, 5 callbacks reading the loss",
                    PROFILED,
                ),
            ),
        ),
    ]
