"""The manager's dispatch state: which callbacks run, how each is called, and what happens when one fails.

Nothing here is public. A :class:`~altametris.sara.core.base_callback.CallbackManager` owns one :class:`HookTable`.
The table keeps, for every registered callback, its plan per hook (decided once, at registration: see
:mod:`~altametris.sara.core._dispatch`), and publishes one dispatcher per hook into the manager's ``__dict__``, where
it shadows the manager's hook method, the way ``functools.cached_property`` does.

When the callback list changes, the table rebuilds the dispatchers of the hooks that the added or removed callbacks
override (all of them when the order of the others changed), before the change returns. So:

* a hook call that starts after a change returned sees it; a hook call that is running goes on over the list as it
  was (its dispatcher holds its own tuple);
* changes are serialised by a lock; hook calls take no lock: they read one attribute and loop over an immutable tuple,
  so several threads may call hooks at once (each callback guards its own state);
* nothing the table holds grows with the number of changes: plans are dropped with their callbacks, and the
  dispatchers refer to the table weakly, so a manager dropped by its last reference is freed at once.

A change made directly to ``manager.callbacks`` that registers something invalid is reported at the next hook call,
as the seed API documents; :meth:`CallbackManager.add_callback` refuses it at once.
"""

from __future__ import annotations

import _thread  # the lock's C module: ``threading`` costs an import that ``import altametris.sara.core`` avoids
import contextlib
import weakref
from typing import TYPE_CHECKING, Any, Callable

from . import _dispatch, _failures
from ._callback import overrides
from ._failures import debug, policy_of
from ._registration import validate_callback, warn_misspelt_hooks
from .distributed import rank_info
from .exceptions import TrainingError
from .hookspecs import HOOKS
from .messages import class_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ._callback import BaseCallback
    from ._dispatch import HookFunction, Plan
    from ._failures import ErrorPolicy
    from .profiling import Profiler

__all__: list[str] = []

TRAIN_START = "_train_start"
"""Where ``on_train_start``'s dispatcher is published: its method always runs, since it starts a run."""


class HookTable:
    """The dispatch state of one manager (see the module's documentation)."""

    def __init__(self, owner: object) -> None:
        self._owner = weakref.ref(owner)
        self.lock = _thread.RLock()
        self.plans: dict[int, tuple[BaseCallback, dict[str, Plan]]] = {}
        self.active: tuple[BaseCallback, ...] = ()
        self.rank = 0
        self.disabled: dict[int, BaseCallback] = {}
        self.warned: dict[tuple[int, str], list[Any]] = {}  # (callback, hook) -> [failures since reported, epoch]
        self.position: dict[str, object] = {}
        self.invalid: TrainingError | None = None
        self.builds = 0  # dispatchers built: the structural tests count them
        self.clock = _dispatch.Clock()  # a TriggerClock once a callback has a trigger
        self.profiler: Profiler | None = None  # timings: on, the dispatchers time each call

    # -- changes ---------------------------------------------------------------------------------------------------

    def changed(self) -> None:
        """The callback list changed in place: rebuild now, or keep its error for the next hook call."""
        try:
            self.update(validate=True)
        except Exception as error:  # a direct change registered something invalid: reported at the next call
            with self.lock:
                self.invalid = error if isinstance(error, TrainingError) else None
                self._unpublish()
            if self.invalid is None:
                raise

    def update(self, *, validate: bool, everything: bool = False) -> None:
        """Bring plans and dispatchers up to date with the owner's callback list.

        Args:
            validate: check the callbacks that are new to the table (a direct change of the list is checked here).
            everything: rebuild every hook (a new run, a new rank), not only those the change touched.

        Raises:
            TrainingError: a callback is invalid (the dispatchers are then withdrawn until the list is fixed).
        """
        owner = self._owner()
        if owner is None:
            return
        with self.lock:
            callbacks: Sequence[BaseCallback] = tuple(owner._callbacks)  # type: ignore[attr-defined]
            plans = self.plans
            new = [
                (index, callback)
                for index, callback in enumerate(callbacks)
                if (known := plans.get(id(callback))) is None or known[0] is not callback
            ]
            if validate:  # the others were checked when they were registered
                for index, callback in new:
                    validate_callback(callback, f"callbacks[{index}]")
                    warn_misspelt_hooks(type(callback))
            self.invalid = None
            if everything:  # a new run or a first build: the process group may have been set up since
                self.rank = rank_info().rank
            for _, callback in new:
                plans[id(callback)] = (callback, _plans(callback))
            # One pass: the callbacks that run here, checkpoint writers after the others (the state a trainer saves
            # inside save_checkpoint is then the whole epoch's: every other callback has ended it).
            disabled, rank = self.disabled, self.rank
            first: list[BaseCallback] = []
            last: list[BaseCallback] = []
            for callback in callbacks:
                if id(callback) not in disabled and not (rank and callback.rank_zero_only):
                    (last if callback.saves_checkpoints else first).append(callback)
            active = (*first, *last)
            hooks = HOOKS if everything or not _published(owner) else self._touched(self.active, active)
            self.active = active
            if self._follow(active):  # triggers came or went: the clocked hooks change too
                hooks = [name for name in HOOKS if name in hooks or name in ("on_epoch_start", "on_batch_end")]
            self._publish(owner, hooks)
            live = {id(callback) for callback in callbacks}  # the plans of callbacks that left go with them
            gone = [plans.pop(key)[0] for key in [key for key in plans if key not in live]]
            for key in [key for key in self.disabled if key not in live]:
                del self.disabled[key]
            if self.profiler is not None:
                self.profiler.forget(live)
            if new or gone or hooks:
                debug(
                    "callbacks registered: %s; removed: %s; dispatchers rebuilt: %s, over %d active callbacks",
                    [class_name(callback) for _, callback in new] or "none",
                    [class_name(callback) for callback in gone] or "none",
                    list(hooks) or "none",
                    len(active),
                )

    def _follow(self, active: Sequence[BaseCallback]) -> bool:
        """Give the clock the triggers of ``active``; whether the clocked dispatchers must be built again.

        The triggers' machinery is imported with the first trigger: a manager without one never loads it.
        """
        clock = self.clock
        if not clock.triggers and not any(_dispatch.TRIGGER_ATTRIBUTE in vars(callback) for callback in active):
            return False
        if type(clock) is _dispatch.Clock:
            self.clock = clock = _triggers().TriggerClock(self)
        return clock.follow(active)

    def _touched(self, before: tuple[BaseCallback, ...], after: tuple[BaseCallback, ...]) -> Iterable[str]:
        """The hooks whose dispatchers change from ``before`` to ``after``: those the added or removed override."""
        if len(before) == len(after) and all(one is other for one, other in zip(before, after)):
            return ()
        # The usual changes first, in O(n) with no set: one callback appended, or one removed.
        if len(after) == len(before) + 1 and all(one is other for one, other in zip(before, after)):
            return self._hooks_of(after[-1])
        if len(after) == len(before) - 1:
            index = next((i for i, (one, other) in enumerate(zip(before, after)) if one is not other), len(after))
            if all(one is other for one, other in zip(before[index + 1 :], after[index:])):
                return self._hooks_of(before[index])
        kept_before = {id(callback) for callback in before}
        kept_after = {id(callback) for callback in after}
        added = [callback for callback in after if id(callback) not in kept_before]
        removed = [callback for callback in before if id(callback) not in kept_after]
        common_before = [id(callback) for callback in before if id(callback) in kept_after]
        common_after = [id(callback) for callback in after if id(callback) in kept_before]
        if common_before != common_after:  # the others moved (insert, sort, reverse): every hook
            return HOOKS
        touched = {hook for callback in (*added, *removed) for hook in self._hooks_of(callback)}
        return [hook for hook in HOOKS if hook in touched]

    def _hooks_of(self, callback: BaseCallback) -> list[str]:
        """The hooks ``callback`` overrides, in lifecycle order."""
        known = self.plans.get(id(callback))
        if known is not None and known[0] is callback:
            return list(known[1])  # its plans were made in the order of HOOKS
        return [name for name in HOOKS if overrides(callback, name)]

    def _publish(self, owner: object, hooks: Iterable[str], *, cached: bool = False) -> None:
        """Build and publish the dispatchers of ``hooks``.

        Args:
            owner: the manager.
            hooks: the hooks to rebuild.
            cached: the callbacks did not change, only who the triggers let run: reuse a dispatcher built before for
                the same callbacks (an epoch's or a batch's dispatchers, built once, not at every firing).
        """
        namespace = vars(owner)
        clock = self.clock
        if not cached:
            clock.cache.clear()
        for name in hooks:
            skipped = clock.skipped(name)
            key = (name, skipped)
            dispatcher = clock.cache.get(key) if skipped is not None else None
            if dispatcher is None:
                pairs = [
                    (plan, callback)
                    for callback in self.active
                    if (plan := self.plans[id(callback)][1].get(name))
                    and (skipped is None or id(callback) not in skipped)
                ]
                plans = _dispatch.distinct([plan for plan, _ in pairs])
                owners = {id(plan.call): callback for plan, (_, callback) in zip(plans, pairs)}
                timing = None
                if self.profiler is not None:
                    plans, timing = self._timed(name, plans, [callback for _, callback in pairs])
                handle = self._handler(name, owners)
                dispatcher = _dispatch.build_dispatcher(
                    HOOKS[name], tuple(plans), handle, self.position, clock if clock.triggers else None, timing
                )
                self.builds += 1
                if skipped is not None:
                    if len(clock.cache) > 64:  # many triggers of many periods: bounded all the same
                        clock.cache.clear()
                    clock.cache[key] = dispatcher
            namespace[TRAIN_START if name == "on_train_start" else name] = dispatcher

    def _timed(
        self, name: str, plans: list[Plan], callbacks: list[BaseCallback]
    ) -> tuple[list[Plan], tuple[tuple[list[Any], ...], list[int]]]:
        """The record of each plan's time and the new dispatcher's call count; the profiler's own entry last."""
        profiler = self.profiler
        assert profiler is not None  # called only when profiling
        calls = [0]
        records = [profiler.record(callback, name, calls) for callback in callbacks]
        timed = list(plans)
        own = {
            "on_batch_end": profiler.batch_ends,
            "on_epoch_end": profiler.epoch_ends,
            "on_train_end": profiler.train_ends,
            "on_exception": profiler.train_ends,
        }.get(name)
        if own is not None:  # it takes anything: called like the others, the loop stays the plain one
            timed.append(_dispatch.Plan(own, timed[0].kind if timed else 0))
            records.append([0.0, 0.0])  # its own time is not reported
        return timed, (tuple(records), calls)

    def profile(self, profiler: Profiler | None) -> None:
        """Start timing into ``profiler``, or stop (``None``): every dispatcher is built again, timed or not."""
        with self.lock:
            if (profiler is None) == (self.profiler is None):
                return
            self.profiler = profiler
            if _published(self._owner()):
                self.update(validate=False, everything=True)

    def _unpublish(self) -> None:
        owner = self._owner()
        if owner is not None:
            namespace = vars(owner)
            for name in (*HOOKS, TRAIN_START):
                namespace.pop(name, None)

    def dispatcher(self, name: str) -> HookFunction:
        """The published dispatcher of hook ``name``; built first when there is none.

        Raises:
            TrainingError: the callback list holds something invalid (a direct change of ``manager.callbacks``).
        """
        owner = self._owner()
        namespace = vars(owner)
        key = TRAIN_START if name == "on_train_start" else name
        found = namespace.get(key)
        if found is None:
            if self.invalid is not None:
                raise self.invalid
            self.update(validate=True, everything=True)
            found = namespace[key]
        dispatcher: HookFunction = found
        return dispatcher

    # -- a run -------------------------------------------------------------------------------------------------------

    def start_run(self) -> None:
        """A new run: call disabled callbacks again, read the error policies and the rank again."""
        owner = self._owner()
        with self.lock:
            if self.invalid is not None:
                raise self.invalid
            callbacks = tuple(owner._callbacks)  # type: ignore[attr-defined]
            for index, callback in enumerate(callbacks):
                _failures.check_policy(callback, f"callbacks[{index}]")
            again = bool(self.disabled) or rank_info().rank != self.rank
            self.disabled.clear()
            self.warned.clear()
            if again:
                self.update(validate=False, everything=True)

    # -- failures ----------------------------------------------------------------------------------------------------

    def _handler(self, name: str, owners: dict[int, BaseCallback]) -> _dispatch.Handler:
        # The dispatcher holds the table (not the manager, which a running hook call need not keep alive).
        def handle(call: HookFunction, error: BaseException, arguments: Mapping[str, object]) -> None:
            self.failed(owners[id(call)], name, error, arguments)

        return handle

    def failed(self, callback: BaseCallback, hook: str, error: BaseException, arguments: Mapping[str, object]) -> None:
        """Apply ``callback``'s error policy to its failure in ``hook``: raise it, or log it and return.

        A cleanup hook's failure is always logged, never raised: it must not hide the error being handled.

        Raises:
            TrainingError: the callback's policy is ``"raise"``.
        """
        failure = _failures.wrap(callback, hook, error, arguments, self.position)
        if HOOKS[hook].cleanup:
            _failures.log_cleanup_failure(failure, hook)
            return
        policy = _policy(callback)
        if policy == "raise":
            raise failure
        if policy == "warn":
            self._warn(callback, hook, failure)
            return
        self._disable(callback, hook, failure, arguments)

    def _warn(self, callback: BaseCallback, hook: str, failure: TrainingError) -> None:
        """Log a tolerated failure: the first with its traceback, then at most once an epoch, with a count."""
        key = (id(callback), hook)
        epoch = self.position.get("epoch")
        seen = self.warned.get(key)
        if seen is None:
            self.warned[key] = [0, epoch]
            _failures.log_tolerated(failure, traceback=True)
            return
        seen[0] += 1
        if seen[1] != epoch:
            _failures.log_tolerated(failure, traceback=False, repeated=seen[0])
            self.warned[key] = [0, epoch]

    def _disable(self, callback: BaseCallback, hook: str, failure: TrainingError, arguments: Mapping[str, Any]) -> None:
        with self.lock:
            if id(callback) in self.disabled:  # the same instance registered twice, failing twice in one hook call
                return
            self.disabled[id(callback)] = callback
            owner = self._owner()
            if owner is not None:  # the current hook call goes on over the list as it was; the next ones skip it
                before = self.active
                self.active = tuple(other for other in before if other is not callback)
                touched = self._touched(before, self.active)
                if self._follow(self.active):
                    touched = [name for name in HOOKS if name in touched or name in ("on_epoch_start", "on_batch_end")]
                self._publish(owner, touched)
        _failures.log_disabled(failure)
        if overrides(callback, "on_exception"):
            spec = HOOKS[hook].argnames
            context = {name: value for name, value in arguments.items() if name not in spec}
            cleanup = _dispatch.call_by_name(callback, HOOKS["on_exception"])
            try:
                cleanup(error=failure, **context)
            except Exception as cleanup_error:
                report = _failures.wrap(callback, "on_exception", cleanup_error, {"error": failure, **context}, {})
                _failures.log_cleanup_failure(report, "on_exception")

    # -- copies --------------------------------------------------------------------------------------------------

    def __reduce__(self) -> tuple[Callable[..., object], tuple[()]]:
        raise TypeError("a HookTable belongs to one manager; a copy of the manager builds its own")


_kinds_by_class: weakref.WeakKeyDictionary[type, dict[str, int | None]] = weakref.WeakKeyDictionary()


def _plans(callback: BaseCallback) -> dict[str, Plan]:
    """How ``callback`` is called for each hook it overrides, decided once, at registration.

    The kind of call of a class's methods is decided once per class; hooks set on the instance, and methods that need
    an adapter, are planned for the instance itself.
    """
    cls = type(callback)
    kinds = _kinds_by_class.get(cls)
    if kinds is None:
        kinds = {}
        for name, hook in HOOKS.items():
            if overrides(cls, name):
                plan = _dispatch.plan_for(callback, hook)
                kinds[name] = None if plan.call != getattr(callback, name) else plan.kind  # None: an adapter
        with contextlib.suppress(TypeError):
            _kinds_by_class[cls] = kinds
    own = getattr(callback, "__dict__", {})
    plans = {}
    for name, hook in HOOKS.items():
        if name in own or (name in kinds and kinds[name] is None):
            if overrides(callback, name):
                plans[name] = _dispatch.plan_for(callback, hook)
        elif name in kinds:
            plans[name] = _dispatch.Plan(getattr(callback, name), kinds[name])  # type: ignore[arg-type]
    return plans


def _policy(callback: BaseCallback) -> ErrorPolicy:
    """``callback``'s error policy as it is when it fails; ``"raise"`` for one that cannot be read or is no policy."""
    try:
        return policy_of(callback) if _failures.policy_problem(policy_of(callback)) is None else "raise"
    except Exception:  # a property that raises: its failure must still reach the trainer
        return "raise"


def _published(owner: object) -> bool:
    return TRAIN_START in vars(owner)


def _triggers() -> Any:
    """The triggers' module, imported with the first callback that has a trigger."""
    from . import triggers

    return triggers
