"""The :class:`CallbackManager`: the callbacks, how each hook reaches them, and what happens when one fails.

Nothing imports this module but :mod:`~altametris.sara.core.base_callback`, the manager's documented home, which
re-exports it. How one hook call reaches the callbacks, start to end:

1. when a callback is registered, :func:`~altametris.sara.core._calling.entry_for` decides, for each hook it
   overrides, which function the loop calls and whether that function takes the context keywords (an
   :class:`~altametris.sara.core._calling.Entry`); a trigger or timings wrap that function (``triggers.py``,
   ``profiling.py``);
2. the manager keeps, per hook, a :class:`HookCalls`: the entries of the callbacks that run here, in order, between
   those of its observers (the triggers' clock and the timings, when on), rebuilt for the hooks a change touches;
3. the hook's method, written once from its hookspec (``_hookmethods.py``) and set on the class, loops over the
   hook's :class:`HookCalls` and hands an exception to :meth:`CallbackManager._failed`, which applies the callback's
   error policy.

Changes (add, remove, a direct change of :attr:`CallbackManager.callbacks`) are serialised by a lock and applied
before they return; hook calls take no lock: they read one dict entry and loop over a tuple, so a call that is
running finishes over the list as it was, and several threads may call hooks at once.
"""

from __future__ import annotations

import _thread  # the lock's C module: ``threading`` costs an import that ``import altametris.sara.core`` avoids
import contextlib
import functools
import operator
import os
import weakref
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Union

from . import _failures, _state
from ._callback import TRIGGER_ATTRIBUTE, BaseCallback, overrides
from ._callback_list import CallbackList
from ._calling import by_name, entry_for, parameters_of
from ._failures import debug, debugging, policy_of
from ._hookmethods import LazyHookMethod, write_hook_methods
from ._registration import validate_callback, warn_misspelt_hooks
from .distributed import rank_info
from .exceptions import OrderError, SaraError, StateError, TrainingError
from .hookimpls import HookimplCallback
from .hookspecs import CLEANUP_HOOKS, HOOKS
from .messages import class_name, safe_repr
from .order import (
    Placement,
    _installed_names,
    declares_order,
    names_of,
    place,
    placement_of,
    resolve,
    unknown_name,
    writers_last,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from ._calling import Entry, HookFunction
    from ._failures import ErrorPolicy
    from .hookspecs import Metrics
    from .profiling import Profiler, Timings
    from .triggers import TriggerClock, TriggerSpec

__all__ = ["CallbackManager", "ConfigSource"]

TRIGGERS_KEY = "sara.triggers"
"""The entry of :meth:`CallbackManager.state_dict` that holds the triggers' counts (reserved: no callback's key)."""

PROGRESS_KEY = "sara.progress"
"""The entry of :meth:`CallbackManager.state_dict` that holds :attr:`CallbackManager.global_step` (reserved)."""

_RUN_STARTS = tuple(name for name, hook in HOOKS.items() if hook.starts("run"))
"""The hooks that start a run, in lifecycle order."""

ConfigSource = Union["Mapping[str, Any]", str, "os.PathLike[str]"]
"""What :meth:`CallbackManager.from_config` reads: a mapping, or the path of a TOML, YAML or JSON file."""


class HookCalls:
    """What one call of a hook runs: the functions in call order, how each is called, and whose each is.

    Attributes:
        hook: the hook's name.
        functions: the functions, in call order, each called with every hookspec argument.
        pairs: ``(function, whether it takes the context keywords)``, in call order.
        context: whether any function takes the context keywords.
        mixed: ``(function, how many of the first hookspec arguments it takes, context)``, in call order, when some
            function takes fewer than all; empty otherwise (the usual case, called through ``functions``).
        arity: how many of the first hookspec arguments every function takes, when they all take the same number
            (``None`` otherwise): with ``mixed``, one call for all instead of a choice per function.
        callbacks: whose each function is, in call order (``None``: one of the manager's observers).
    """

    __slots__ = ("arity", "callbacks", "context", "functions", "hook", "mixed", "pairs")

    def __init__(self, hook: str, entries: Sequence[Entry]) -> None:
        callbacks, _, functions, contexts, arities = zip(*entries) if entries else ((), (), (), (), ())
        functions = _distinct(functions)
        self.hook = hook
        self.functions: tuple[HookFunction, ...] = functions
        self.pairs = tuple(zip(functions, contexts))
        self.context = True in contexts
        if arities.count(None) == len(arities):  # the usual case: every function takes every argument
            self.mixed: tuple[tuple[HookFunction, int, bool], ...] = ()
            self.arity: int | None = None
        else:
            full = len(HOOKS[hook].argnames)
            counts = [full if arity is None else arity for arity in arities]
            self.mixed = tuple(zip(functions, counts, contexts))
            self.arity = counts[0] if len(set(counts)) == 1 else None
        self.callbacks: tuple[object, ...] = callbacks

    def callback_of(self, call: HookFunction) -> object:
        """Whose function ``call`` is (``None``: one of the manager's observers)."""
        for function, callback in zip(self.functions, self.callbacks):
            if function is call:
                return callback
        return None


def _distinct(functions: tuple[HookFunction, ...]) -> tuple[HookFunction, ...]:
    """``functions``, each a distinct object, so that the one that raised tells whose it is.

    A function that comes twice (one plugin's function given to two callbacks) is wrapped the second time.
    """
    if len(set(map(id, functions))) == len(functions):  # the usual case: nothing to wrap
        return functions
    distinct: list[HookFunction] = []
    seen: set[int] = set()
    for function in functions:
        kept = functools.partial(function) if id(function) in seen else function
        seen.add(id(kept))
        distinct.append(kept)
    return tuple(distinct)


class HookCallsByHook:
    """The :class:`HookCalls` of every hook of one manager, one attribute per hook (``calls.on_batch_end``)."""

    __slots__ = tuple(HOOKS)  # no __getattr__ here: it would slow every attribute read down


class _Refusing:
    """The hook calls of a manager whose list holds something invalid: every hook call raises that error."""

    def __init__(self, error: TrainingError) -> None:
        self.error = error

    def __getattr__(self, hook: str) -> HookCalls:
        raise self.error


class CallbackManager:
    r"""Calls every registered callback's hooks, in registration order.

    The manager is what a training loop talks to: it has one method per hook, with the hookspec's signature, and
    calls that hook on every callback that overrides it. A callback's exception is raised as a
    :class:`~altametris.sara.core.exceptions.TrainingError` that names the callback, the hook and the epoch or
    batch; ``KeyboardInterrupt``, ``SystemExit`` and other ``BaseException``\ s pass through untouched. A callback
    whose :attr:`~BaseCallback.on_error` policy is ``"warn"`` or ``"disable"`` has its failures logged instead, and
    the hook goes on with the next callback.

    Callbacks may be added or removed at any time, also from inside a hook (a callback removing itself, say): the
    change applies from the next hook call. That holds for direct changes of :attr:`callbacks` too, and for changes
    made from another thread: they are applied under a lock before they return. Hook calls take no lock, and may come
    from several threads at once. A callback's hooks are read when it is registered.

    The hook methods are ordinary methods of this class: a subclass may override one and call ``super()``.

    Args:
        callbacks: the callbacks, in the order their hooks are called.
        profile: time every callback's hooks (see :mod:`~altametris.sara.core.profiling`); by default, when the
            environment variable ``SARA_PROFILE`` is ``1``.

    Raises:
        TrainingError: when an item is not a :class:`BaseCallback` instance, or has no valid error policy.

    Example:
        >>> class Recorder(BaseCallback):
        ...     def __init__(self):
        ...         self.seen = []
        ...     def on_batch_end(self, batch, metrics, **kwargs):
        ...         self.seen.append((batch, metrics["loss"], kwargs))
        >>> recorder = Recorder()
        >>> manager = CallbackManager([recorder])
        >>> manager.on_batch_end(0, {"loss": 1.5}, lr=0.1)
        >>> recorder.seen
        [(0, 1.5, {'lr': 0.1})]
        >>> manager
        CallbackManager(callbacks=[Recorder])
    """

    if TYPE_CHECKING:  # the hook methods, as _hookmethods writes them from the hookspecs (a test holds them to it)

        def on_checkpoint_load(self, path: str, **kwargs: Any) -> None: ...
        def on_train_start(self, **kwargs: Any) -> None: ...
        def on_train_end(self, **kwargs: Any) -> None: ...
        def on_epoch_start(self, epoch: int, **kwargs: Any) -> None: ...
        def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None: ...
        def on_batch_start(self, batch: int, **kwargs: Any) -> None: ...
        def on_after_backward(self, batch: int, **kwargs: Any) -> None: ...
        def on_before_optimizer_step(self, batch: int, **kwargs: Any) -> None: ...
        def on_after_optimizer_step(self, batch: int, **kwargs: Any) -> None: ...
        def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None: ...
        def on_validation_start(self, **kwargs: Any) -> None: ...
        def on_validation_batch_start(self, batch: int, **kwargs: Any) -> None: ...
        def on_validation_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None: ...
        def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None: ...
        def on_checkpoint_save(self, path: str, **kwargs: Any) -> None: ...
        def on_exception(self, error: BaseException, **kwargs: Any) -> None: ...

    def __init__(self, callbacks: Iterable[BaseCallback] | None = None, *, profile: bool | None = None) -> None:
        if profile is None:
            profile = bool(os.environ.get("SARA_PROFILE")) and _profiling().profiling_requested()
        elif not isinstance(profile, bool):
            raise TrainingError(f"CallbackManager(): profile: expected True or False, got {safe_repr(profile)}")
        self.global_step = 0
        """The training batches completed, as the trainer last set it (at each epoch's end, in :func:`fit`): saved
        in :meth:`state_dict`, so that a resumed training's ``global_step`` goes on from it."""
        self._setup(list(callbacks or ()), profile=profile)
        self._validate_callbacks()
        self._sync(validate=False, everything=True)

    def _setup(self, callbacks: list[BaseCallback], *, profile: bool) -> None:
        """The manager's own state, empty: what a new manager and a copy start from."""
        write_hook_methods(CallbackManager, HOOKS.values())  # the first manager writes the class's hook methods
        self._lock = _thread.RLock()
        self._callbacks: CallbackList[BaseCallback] = CallbackList(callbacks, _notifier(self))
        self._entries: dict[int, tuple[BaseCallback, dict[str, Entry]]] = {}  # the registered callbacks' entries
        self._active: tuple[BaseCallback, ...] = ()  # those that run here, in call order
        self._declared: set[int] = set()  # the registered callbacks that declare an order
        self._calls: HookCallsByHook | _Refusing = HookCallsByHook()
        self._disabled: dict[int, BaseCallback] = {}
        self._warned: dict[tuple[int, str], list[Any]] = {}  # (callback, hook) -> [failures since reported, epoch]
        self._invalid: TrainingError | None = None
        self._rank = rank_info().rank
        self._epoch: int | None = None  # the current epoch, named in the errors of hooks that do not receive it
        self._started: str | None = None  # the last hook that started a run
        self._clock: TriggerClock | None = None  # with the first triggered callback
        self._profiler: Profiler | None = _profiling().Profiler() if profile else None

    @classmethod
    def from_config(cls, source: ConfigSource, *, allow_import_paths: bool = False) -> CallbackManager:
        """Build a manager from a config: callbacks enabled by plugin name, in order, with parameters.

        Args:
            source: a mapping, or the path (``str`` or ``os.PathLike``) of a ``.toml``, ``.yaml``/``.yml`` or
                ``.json`` file, whose ``callbacks`` key lists plugin names or ``{name, params, enabled, on_error}``
                tables; a top-level ``profile = true`` turns timings on (see :meth:`profile`).
            allow_import_paths: also accept ``"module:Class"`` items that name no registered plugin. Off by
                default: a config is data and names registered plugins only.

        Raises:
            ConfigError: the file or mapping is malformed (the message names the file and the key).
            PluginError: a plugin is unknown, broken, or refuses its parameters.
        """
        from .config import load_callbacks, read_config

        callbacks = load_callbacks(source, allow_import_paths=allow_import_paths)  # checks `profile` too
        profile = read_config(source).get("profile")
        return cls(callbacks, profile=profile)

    # -- the callback list -------------------------------------------------------------------------------------

    @property
    def callbacks(self) -> list[BaseCallback]:
        """The registered callbacks, in call order; changing this list takes effect from the next hook call."""
        return self._callbacks

    @callbacks.setter
    def callbacks(self, callbacks: Iterable[BaseCallback]) -> None:
        with self._lock:
            self._callbacks = CallbackList(callbacks, _notifier(self))
            self._list_changed()

    def _validate_callbacks(self) -> None:
        """Check that every registered callback is a :class:`BaseCallback` instance with a valid error policy.

        Raises:
            TrainingError: naming the position and the offending object.
        """
        for index, callback in enumerate(self._callbacks):
            validate_callback(callback, f"callbacks[{index}]")
            warn_misspelt_hooks(type(callback))

    def add_callback(
        self,
        callback: BaseCallback,
        *,
        on_error: ErrorPolicy | None = None,
        when: TriggerSpec | None = None,
        before: Sequence[str] = (),
        after: Sequence[str] = (),
    ) -> None:
        """Register ``callback`` after the others (or where ``before`` and ``after`` put it).

        Args:
            callback: the callback.
            on_error: its error policy, set as ``callback.on_error``; by default it keeps the one it has.
            when: its :class:`~altametris.sara.core.triggers.Trigger` (or ``"100ba"``, ``"2ep"``, or a mapping of the
                trigger's keys): its hooks run only when the trigger fires. By default it keeps the one its config
                item gave, if any, and runs at every hook otherwise.
            before: plugin names it runs before (each stands for every callback of that plugin;
                :mod:`~altametris.sara.core.order`), in addition to its class's ``run_before``.
            after: plugin names it runs after, in addition to its class's ``run_after``.

        Raises:
            TrainingError: when ``callback`` is not a :class:`BaseCallback` instance, ``on_error`` no policy,
                ``when`` no trigger (naming the key), or ``before``/``after`` names no plugin.
            OrderError: the declared order would have a cycle (nothing was changed).

        Example:
            >>> class Flaky(BaseCallback):
            ...     def on_batch_end(self, batch, metrics):
            ...         raise TimeoutError("metrics server")
            >>> manager = CallbackManager()
            >>> manager.add_callback(Flaky(), on_error="disable")
            >>> manager.on_batch_end(0, {})  # logged once; Flaky is not called again in this run
            >>> [type(callback).__name__ for callback in manager.disabled], len(manager)
            (['Flaky'], 1)
        """
        validate_callback(callback, "add_callback()")
        trigger = None
        if when is not None:
            try:
                trigger = _triggers().Trigger.parse(when)
            except SaraError as error:
                raise TrainingError(f"add_callback(): {error}", callback=callback) from error
        placement = self._placement(callback, before, after) if before or after else None
        if on_error is not None and _failures.policy_problem(on_error) is not None:
            _failures.set_policy(callback, on_error, "add_callback()")  # refused, naming the policy
        with self._lock:  # checked above: a direct change of the list is checked in _sync
            if placement is not None or self._declared or declares_order(callback):
                previous = placement_of(callback)
                if placement is not None:
                    place(callback, placement)
                try:
                    resolve([*self._callbacks, callback])  # a cycle raises here, before anything changed
                except OrderError:
                    place(callback, previous)
                    raise
            if on_error is not None:
                _failures.set_policy(callback, on_error, "add_callback()")
            if trigger is not None:
                _triggers().set_trigger(callback, trigger)
            warn_misspelt_hooks(type(callback))
            list.append(self._callbacks, callback)
            self._sync(validate=False, only=callback)

    def _placement(self, callback: BaseCallback, before: Sequence[str], after: Sequence[str]) -> Placement:
        """The :class:`~altametris.sara.core.order.Placement` of ``add_callback(before=..., after=...)``, checked."""
        known = _installed_names() | {name for name in names_of(self._callbacks) if name is not None}
        for key, names in (("before", before), ("after", after)):
            if isinstance(names, str) or not all(isinstance(name, str) for name in names):
                raise TrainingError(
                    f"add_callback(): {key}: expected a list of plugin names, got {safe_repr(names)}",
                    callback=callback,
                )
            for name in names:
                problem = unknown_name(name, known, "no registered callback's name")
                if problem is not None:
                    raise TrainingError(f"add_callback(): {key}: {problem}", callback=callback)
        existing = placement_of(callback)
        return Placement(existing.name if existing else None, tuple(before), tuple(after), "add_callback()")

    def register(
        self,
        plugin: object,
        *,
        name: str | None = None,
        on_error: ErrorPolicy | None = None,
        when: TriggerSpec | None = None,
    ) -> BaseCallback:
        """Register a callback, or a plain pluggy plugin (wrapped in a :class:`HookimplCallback`), after the others.

        This is pluggy's ``PluginManager.register``: a module, class or object whose functions carry the
        :data:`~altametris.sara.core.hookspecs.hookimpl` marker runs like any callback, in registration order.

        Args:
            plugin: a :class:`BaseCallback` instance, or a pluggy plugin.
            name: the pluggy plugin's name in messages and ``repr`` (its module or class name by default).
            on_error: its error policy, as for :meth:`add_callback`.
            when: its trigger, as for :meth:`add_callback`.

        Returns:
            The registered callback (the wrapper, for a pluggy plugin).

        Raises:
            TrainingError: as :meth:`add_callback`, or a pluggy plugin that breaks pluggy's rules (an unknown hook,
                an argument the hookspec does not have), naming the plugin and the function.
        """
        callback = plugin if isinstance(plugin, BaseCallback) else HookimplCallback(plugin, name=name)
        self.add_callback(callback, on_error=on_error, when=when)
        return callback

    def remove_callback(self, callback: BaseCallback) -> None:
        """Unregister ``callback``: its first registration, found by identity (an equal callback is another one).

        Raises:
            TrainingError: when ``callback`` is not registered.
        """
        with self._lock:
            for index, registered in enumerate(self._callbacks):
                if registered is callback:
                    list.__delitem__(self._callbacks, index)
                    self._sync(validate=False, only=callback)
                    return
        raise TrainingError(
            f"cannot remove {safe_repr(callback)}: it is not registered with this manager "
            f"(registered: {self._class_names() or 'none'})",
            callback=callback,
        )

    def __len__(self) -> int:
        return len(self._callbacks)

    def __iter__(self) -> Iterator[BaseCallback]:
        return iter(tuple(self._callbacks))

    def __contains__(self, callback: object) -> bool:
        return any(registered is callback for registered in self._callbacks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(callbacks=[{self._class_names()}])"

    def _class_names(self) -> str:
        """The callbacks, in call order (registration order, changed only by a declared order)."""
        try:
            ordered = resolve(self._callbacks)
        except Exception:  # a cycle, a property that raises: refused at the next hook call, shown as registered
            ordered = list(self._callbacks)
        return ", ".join(_named(callback) for callback in ordered)

    # -- timings -------------------------------------------------------------------------------------------------

    def profile(self, enabled: bool = True) -> None:
        """Start (or, with ``False``, stop) timing every callback's hooks: see :attr:`timings`."""
        with self._lock:
            if enabled == (self._profiler is not None):
                return
            self._profiler = _profiling().Profiler() if enabled else None
            self._entries.clear()  # every entry again, with or without its timing wrapper
            self._sync(validate=False, everything=True)

    @property
    def timings(self) -> Timings | None:
        """What each callback's hooks cost so far, per callback and hook; ``None`` when timing is off.

        See :mod:`~altametris.sara.core.profiling`: turned on by ``profile=True``, :meth:`profile`, a config's
        ``profile = true`` or ``SARA_PROFILE=1``.
        """
        return None if self._profiler is None else self._profiler.timings()

    # -- what runs: entries, per hook ----------------------------------------------------------------------------

    def _list_changed(self) -> None:
        """The callback list changed in place: apply it now, or keep its error for the next hook call."""
        with self._lock:
            try:
                self._sync(validate=True)
            except (TrainingError, OrderError) as error:  # a direct change made something invalid: the next call says
                refused = error if isinstance(error, TrainingError) else TrainingError(f"callbacks: {error}")
                self._invalid = refused
                self._calls = _Refusing(refused)

    def _sync(self, *, validate: bool, everything: bool = False, only: BaseCallback | None = None) -> None:
        """Bring the entries and the hooks' calls up to date with the callback list, rebuilding what changed.

        Args:
            validate: check the callbacks that are new here (a direct change of the list is checked here).
            everything: rebuild every hook (a new run, a new rank, timings turned on or off).
            only: the one callback that :meth:`add_callback` appended or :meth:`remove_callback` removed: the others
                kept their order, so only its hooks are rebuilt, and the list is not compared with the entries.

        Raises:
            TrainingError: a new callback is invalid; nothing was changed.
        """
        callbacks = tuple(self._callbacks)
        entries = self._entries
        had_declared = bool(self._declared)
        if only is None:
            candidates: Iterable[tuple[int, BaseCallback]] = enumerate(callbacks)
            live = {id(callback) for callback in callbacks}
        else:
            candidates = [(len(callbacks) - 1, only)]
            present = (callbacks and callbacks[-1] is only) or any(map(operator.is_, callbacks, repeat(only)))
            live = {id(only)} if present else set()
        new = [
            (index, callback)
            for index, callback in candidates
            if id(callback) in live and ((known := entries.get(id(callback))) is None or known[0] is not callback)
        ]
        if validate:  # the others were checked when they were registered
            for index, callback in new:
                validate_callback(callback, f"callbacks[{index}]")
                warn_misspelt_hooks(type(callback))
        touched: set[str] = set()
        clock = self._clock
        for _, callback in new:
            entries[id(callback)] = (callback, self._entries_of(callback))
            touched.update(entries[id(callback)][1])
            self._note_order(callback)
        leaving = [id(only)] if only is not None else list(entries)
        gone = [entries.pop(key) for key in leaving if key not in live and key in entries]
        for callback, hooks in gone:
            touched.update(hooks)
            self._disabled.pop(id(callback), None)
            self._declared.discard(id(callback))
            if self._clock is not None:
                self._clock.forget(callback)
            if self._profiler is not None:
                self._profiler.forget(callback)
        if only is not None and id(only) in entries:  # registered again, or once more: its hooks change
            touched.update(entries[id(only)][1])
            self._note_order(only)  # add_callback(after=...) may have placed it anew
        before, self._active = self._active, self._order_after(callbacks, only, new)
        # an insert, a sort, or a removal under a declared order: every hook
        reordered = (only is None or had_declared or bool(self._declared)) and _moved(before, self._active)
        if everything or reordered or self._invalid is not None or clock is not self._clock:
            touched = set(HOOKS)
        self._invalid = None
        self._rebuild(touched)
        if (new or gone or everything) and debugging():
            debug(
                "callbacks registered: %s; removed: %s; hooks rebuilt: %s, over %d active callbacks",
                [class_name(callback) for _, callback in new] or "none",
                [class_name(callback) for callback, _ in gone] or "none",
                [name for name in HOOKS if name in touched] or "none",
                len(self._active),
            )

    def _note_order(self, callback: BaseCallback) -> None:
        """Keep ``callback`` among those that declare an order, if it does (then every change sorts them all)."""
        if declares_order(callback):
            self._declared.add(id(callback))

    def _entries_of(self, callback: BaseCallback) -> dict[str, Entry]:
        """How each hook that ``callback`` overrides calls it: timed when timings are on, gated by its trigger."""
        entries = {name: entry_for(callback, HOOKS[name]) for name in _overridden(callback)}
        if self._profiler is not None:
            entries = {name: self._profiler.timed(entry) for name, entry in entries.items()}
        trigger = getattr(callback, "__dict__", {}).get(TRIGGER_ATTRIBUTE)
        if trigger is not None:
            if self._clock is None:
                self._clock = _triggers().TriggerClock()
            entries = self._clock.gated(callback, trigger, entries)
        return entries

    def _order_after(
        self, callbacks: Sequence[BaseCallback], only: BaseCallback | None, new: list[tuple[int, BaseCallback]]
    ) -> tuple[BaseCallback, ...]:
        """:meth:`_order` of ``callbacks``, without reading them all again when one callback was only appended."""
        active = self._active
        if only is None or not new or new[0][1] is not only or not callbacks or callbacks[-1] is not only:
            return self._order(callbacks)
        runs_here = not (self._rank and only.rank_zero_only)
        if (
            not self._declared
            and runs_here
            and (only.saves_checkpoints or not (active and active[-1].saves_checkpoints))
        ):
            return (*active, only)
        return self._order(callbacks)

    def _order(self, callbacks: Sequence[BaseCallback]) -> tuple[BaseCallback, ...]:
        """The callbacks that run here, in call order: checkpoint writers after the others, and any declared order.

        Disabled callbacks, and rank-zero-only callbacks off rank 0, are left out. Writers run last so that the state
        a trainer saves inside ``save_checkpoint`` is the whole epoch's: every other callback has ended it
        (:mod:`~altametris.sara.core.order`).
        """
        ordered = resolve(callbacks) if self._declared else writers_last(callbacks)  # known: no callback declares
        return tuple(
            callback
            for callback in ordered
            if id(callback) not in self._disabled and not (self._rank and callback.rank_zero_only)
        )

    def _rebuild(self, hooks: Iterable[str]) -> None:
        """Make the calls of ``hooks`` from the active callbacks' entries, between the observers' own."""
        calls = HookCallsByHook() if isinstance(self._calls, _Refusing) else self._calls
        observers = [observer for observer in (self._clock, self._profiler) if observer is not None]
        entries = [self._entries[id(callback)][1] for callback in self._active]
        count = len(entries)
        for name in hooks:
            # each callback's entry for this hook, those without one left out (as ``[e[name] for e in entries if
            # name in e]``, looped in C: a change rebuilds every hook it touches over every active callback)
            ordered = list(filter(None, map(dict.get, entries, repeat(name, count))))
            if observers:
                before = [entry for observer in observers if (entry := observer.before.get(name))]
                after = [entry for observer in observers if (entry := observer.after.get(name))]
                ordered = [*before, *ordered, *after]
            setattr(calls, name, HookCalls(name, ordered))
        self._calls = calls

    # -- a run and its failures ------------------------------------------------------------------------------------

    def _start_run(self, hook: str) -> None:
        """A new run: call disabled callbacks again, read the error policies and the rank again.

        A run starts at the first of the hooks that start one (``on_checkpoint_load`` in a resumed run, else
        ``on_train_start``): a start hook called after an earlier one of the lifecycle continues its run, so that a
        callback disabled in ``on_checkpoint_load`` stays disabled.
        """
        previous, self._started = self._started, hook
        if previous is not None and _RUN_STARTS.index(previous) < _RUN_STARTS.index(hook):
            return
        with self._lock:
            if self._invalid is not None:
                raise self._invalid
            for index, callback in enumerate(self._callbacks):
                _failures.check_policy(callback, f"callbacks[{index}]")
            rank = rank_info().rank
            again = bool(self._disabled) or rank != self._rank
            self._disabled.clear()
            self._warned.clear()
            self._epoch = None
            if again:
                self._rank = rank
                self._sync(validate=False, everything=True)

    def _failed(self, calls: HookCalls, call: HookFunction, error: Exception, arguments: Mapping[str, Any]) -> None:
        """A function of ``calls`` raised ``error``: apply its callback's error policy (raise it, or log it)."""
        callback = calls.callback_of(call)
        if callback is None:  # an observer of the manager's own (the clock, the timings): not a callback's failure
            raise error
        self._handle(callback, calls.hook, error, arguments)

    def _handle(self, callback: Any, hook: str, error: Exception, arguments: Mapping[str, Any]) -> None:
        """Apply ``callback``'s error policy to its failure in ``hook``; a cleanup hook's failure is only logged.

        Raises:
            TrainingError: the callback's policy is ``"raise"``.
        """
        position = {} if self._epoch is None else {"epoch": self._epoch}
        failure = _failures.wrap(callback, hook, error, arguments, position)
        if HOOKS[hook].cleanup:
            _failures.log_cleanup_failure(failure, hook)
            return
        policy = _policy(callback)
        if policy == "raise":
            raise failure
        if policy == "warn":
            self._warn(callback, hook, failure)
        else:
            self._disable(callback, hook, failure, arguments)

    def _warn(self, callback: BaseCallback, hook: str, failure: TrainingError) -> None:
        """Log a tolerated failure: the first with its traceback, then at most once an epoch, with a count."""
        key = (id(callback), hook)
        seen = self._warned.get(key)
        if seen is None:
            self._warned[key] = [0, self._epoch]
            _failures.log_tolerated(failure, traceback=True)
            return
        seen[0] += 1
        if seen[1] != self._epoch:
            _failures.log_tolerated(failure, traceback=False, repeated=seen[0])
            self._warned[key] = [0, self._epoch]

    def _disable(self, callback: BaseCallback, hook: str, failure: TrainingError, arguments: Mapping[str, Any]) -> None:
        """Stop calling ``callback`` in this run, after giving it its cleanup hooks with its own failure."""
        with self._lock:
            if id(callback) in self._disabled:  # the same instance registered twice, failing twice in one hook call
                return
            self._disabled[id(callback)] = callback
            self._active = self._order(self._callbacks)
            self._rebuild(self._entries[id(callback)][1])  # the current hook call goes on over the list as it was
        _failures.log_disabled(failure)
        context = {name: value for name, value in arguments.items() if name not in HOOKS[hook].argnames}
        for name in CLEANUP_HOOKS:
            if overrides(callback, name):
                try:
                    self._call_by_name(callback, name, {"error": failure, **context})
                except Exception as cleanup_error:
                    report = _failures.wrap(callback, name, cleanup_error, {"error": failure, **context}, {})
                    _failures.log_cleanup_failure(report, name)

    @staticmethod
    def _call_by_name(callback: object, hook: str, arguments: Mapping[str, Any]) -> object:
        """Call ``callback``'s ``hook`` with those of ``arguments`` it names (the rules of :mod:`._calling`)."""
        method = getattr(callback, hook)
        return by_name(method, parameters_of(method), HOOKS[hook])(**arguments)

    @property
    def disabled(self) -> tuple[BaseCallback, ...]:
        """The callbacks that failed under ``on_error="disable"`` and are not called again in this run.

        They stay registered: the next ``on_train_start`` (a new run) calls them again.
        """
        return tuple(self._disabled.values())

    def _execute_callback_hook(self, hook_name: str, *args: Any, **kwargs: Any) -> None:
        """Call hook ``hook_name`` on every callback, with positional arguments mapped to the hookspec's names.

        With every hookspec argument given, this is the hook's method. When one is missing, callbacks that do not
        name it still run, and those that require it fail as their policy says (triggers and timings aside).

        Raises:
            TrainingError: for an unknown hook name (listing the hooks), arguments that do not fit the hookspec,
                or a callback's failure.
        """
        hook = HOOKS.get(hook_name) if isinstance(hook_name, str) else None
        if hook is None:
            raise TrainingError(f"unknown hook {hook_name!r}; the hooks are: {', '.join(HOOKS)}", hook=None)
        if len(args) > len(hook.argnames):
            raise TrainingError(
                f"{hook_name}() takes {len(hook.argnames)} positional argument(s) "
                f"({', '.join(hook.argnames) or 'none'}), got {len(args)}",
                hook=hook_name,
            )
        for name, value in zip(hook.argnames, args):
            if name in kwargs:
                raise TrainingError(f"{hook_name}() got argument {name!r} both by position and by name", hook=hook_name)
            kwargs[name] = value
        if all(name in kwargs for name in hook.argnames):
            getattr(self, hook_name)(*[kwargs.pop(name) for name in hook.argnames], **kwargs)
            return
        if hook.starts("run"):
            self._start_run(hook_name)
        if "epoch" in kwargs:
            self._epoch = kwargs["epoch"]
        for callback in getattr(self._calls, hook_name).callbacks:
            if callback is None:  # the manager's observers need every argument
                continue
            try:
                self._call_by_name(callback, hook_name, kwargs)
            except Exception as error:
                self._handle(callback, hook_name, error, kwargs)

    # -- state ---------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every stateful callback's :meth:`~BaseCallback.state_dict`, under its :attr:`~BaseCallback.state_key`.

        Raises:
            StateError: when two stateful callbacks share a ``state_key``.
        """
        state = {key: callback.state_dict() for key, callback in _state.stateful(self._callbacks).items()}
        if self._clock is not None and self._clock.gates:  # every 100th batch stays every 100th after a resume
            state[TRIGGERS_KEY] = self._clock.state()
        if self.global_step:
            state[PROGRESS_KEY] = {"global_step": self.global_step}
        return state

    def load_state_dict(self, state_dict: Mapping[str, Mapping[str, Any]], *, strict: bool = True) -> None:
        """Give each stateful callback its saved state; callbacks absent from ``state_dict`` keep a fresh state.

        Args:
            state_dict: what :meth:`state_dict` returned.
            strict: refuse entries that no registered callback claims (a renamed ``state_key``, a missing callback).

        Raises:
            StateError: for unclaimed entries (when ``strict``), or a callback that refuses its state.
        """
        triggers = state_dict.get(TRIGGERS_KEY)
        progress = state_dict.get(PROGRESS_KEY)
        if triggers is not None or progress is not None:
            state_dict = {key: value for key, value in state_dict.items() if key not in (TRIGGERS_KEY, PROGRESS_KEY)}
        if progress is not None:
            step = progress.get("global_step") if isinstance(progress, dict) else None
            if not isinstance(step, int) or isinstance(step, bool) or step < 0:
                raise StateError(
                    f"load_state_dict(): {PROGRESS_KEY}: expected {{'global_step': <int >= 0>}}, got "
                    f"{safe_repr(progress)}"
                )
        _state.load(_state.stateful(self._callbacks), state_dict, strict=strict)
        if progress is not None:
            self.global_step = progress["global_step"]
        if triggers is not None and self._clock is not None and self._clock.gates:
            with self._lock:
                self._clock.load(triggers)

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, copy, deepcopy) is a new manager over the same callbacks: it starts a new run, with its own
        # calls and its own lock; a subclass's own attributes come along.
        own = {name: value for name, value in self.__dict__.items() if name not in _TRANSIENT}
        return {"callbacks": list(self._callbacks), "profile": self._profiler is not None, "own": own}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state["own"])
        self._setup(state["callbacks"], profile=state["profile"])
        self._sync(validate=False, everything=True)


_TRANSIENT = frozenset(
    (
        "_lock", "_callbacks", "_entries", "_active", "_calls", "_disabled", "_warned", "_invalid", "_rank",
        "_epoch", "_started", "_clock", "_profiler", "_declared",
    )
)  # fmt: skip
"""What :meth:`CallbackManager._setup` makes: the manager's own state, made anew by a copy (a test holds them equal)."""

for _hook in HOOKS.values():
    setattr(CallbackManager, _hook.name, LazyHookMethod(_hook, CallbackManager, HOOKS.values()))
del _hook


def _notifier(manager: CallbackManager) -> Callable[[], None]:
    """What ``manager``'s list calls when it changes, through a weak reference to the manager.

    A dropped manager is then freed at once, without the cycle collector: the list would otherwise keep its manager
    alive, and the manager its list.
    """
    owner = weakref.ref(manager)

    def changed() -> None:
        found = owner()
        if found is not None:
            found._list_changed()

    return changed


_hooks_by_class: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _overridden(callback: BaseCallback) -> tuple[str, ...]:
    """The hooks ``callback`` overrides, in lifecycle order: read once per class, and for hooks set on the instance."""
    cls = type(callback)
    hooks = _hooks_by_class.get(cls)
    if hooks is None:
        hooks = tuple(name for name in HOOKS if overrides(cls, name))
        with contextlib.suppress(TypeError):
            _hooks_by_class[cls] = hooks
    own = getattr(callback, "__dict__", None)
    if own and not own.keys().isdisjoint(HOOKS):
        return tuple(name for name in HOOKS if overrides(callback, name))
    return hooks


def _moved(before: Sequence[object], after: Sequence[object]) -> bool:
    """Whether the callbacks in both ``before`` and ``after`` are in another order (an insert, a sort ...)."""
    kept_before = {id(callback) for callback in before}
    kept_after = {id(callback) for callback in after}
    common_before = [id(callback) for callback in before if id(callback) in kept_after]
    common_after = [id(callback) for callback in after if id(callback) in kept_before]
    return common_before != common_after


def _policy(callback: BaseCallback) -> ErrorPolicy:
    """``callback``'s error policy as it is when it fails; ``"raise"`` for one that cannot be read or is no policy."""
    try:
        return policy_of(callback) if _failures.policy_problem(policy_of(callback)) is None else "raise"
    except Exception:  # a property that raises: its failure must still reach the trainer
        return "raise"


def _triggers() -> Any:
    """The triggers' module, imported when a callback is first given a trigger."""
    from . import triggers

    return triggers


def _profiling() -> Any:
    """The timings' module, imported when a manager first turns timings on: opt-in, it costs nothing otherwise."""
    from . import profiling

    return profiling


def _named(callback: object) -> str:
    """A callback as the manager's ``repr`` shows it: its class, and its error policy when not the default."""
    try:
        policy = getattr(callback, "on_error", "raise")
    except Exception:  # a property that raises: refused at the next hook call, shown here
        policy = "<unreadable>"
    shown = [] if policy == "raise" else [f"on_error={safe_repr(policy)}"]
    trigger = getattr(callback, "__dict__", {}).get(TRIGGER_ATTRIBUTE)
    if trigger is not None:
        shown.append(f"when={str(trigger)!r}")
    return type(callback).__name__ + (f"({', '.join(shown)})" if shown else "")
