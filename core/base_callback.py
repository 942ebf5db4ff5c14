"""Callbacks and the manager that calls them.

A callback subclasses :class:`BaseCallback` and overrides the hooks it cares about; a trainer builds a
:class:`CallbackManager` and calls its hooks from the training loop. The hooks, their arguments and their order are
those of :mod:`altametris.sara.core.hookspecs`.

Example:
    >>> from altametris.sara.core.base_callback import BaseCallback, CallbackManager
    >>> class LoggingCallback(BaseCallback):
    ...     def on_epoch_end(self, epoch, metrics):
    ...         print(f"Epoch {epoch}: loss={metrics['loss']}")
    >>> manager = CallbackManager([LoggingCallback()])
    >>> manager.on_epoch_end(epoch=1, metrics={"loss": 0.5})
    Epoch 1: loss=0.5

A callback's exception reaches the trainer as a :class:`~altametris.sara.core.exceptions.TrainingError` that names the
callback, the hook and where the training was, with the original exception as ``__cause__``:

    >>> class Broken(BaseCallback):
    ...     def on_batch_end(self, batch, metrics, **kwargs):
    ...         raise ValueError("no loss")
    >>> from altametris.sara.core.exceptions import TrainingError
    >>> try:
    ...     CallbackManager([Broken()]).on_batch_end(7, {})
    ... except TrainingError as error:
    ...     print(error)
    ...     print(repr(error.__cause__))
    callback 'Broken' failed in on_batch_end (batch 7): ValueError: no loss
    ValueError('no loss')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

from . import _dispatch, _failures, _state
from ._callback import BaseCallback, overrides
from ._callback_list import CallbackList
from ._dispatch import TRIGGER_ATTRIBUTE
from ._failures import ErrorPolicy
from ._hooktable import TRAIN_START, HookTable
from ._registration import validate_callback, warn_misspelt_hooks
from .exceptions import SaraError, TrainingError
from .hookimpls import HookimplCallback
from .hookspecs import HOOKS, Metrics
from .messages import safe_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from .profiling import Timings
    from .triggers import TriggerSpec


__all__ = ["BaseCallback", "CallbackManager", "ConfigSource", "ErrorPolicy", "logger"]

TRIGGERS_KEY = "sara.triggers"
"""The entry of :meth:`CallbackManager.state_dict` that holds the triggers' counts (reserved: no callback's key)."""

if TYPE_CHECKING:
    import logging

    logger: logging.Logger
    """The logger of the callback machinery (``altametris.sara.core.base_callback``)."""


def __getattr__(name: str) -> Any:
    # ``logger`` is made on first use: ``logging`` costs about as much to import as pluggy, and a training that
    # never fails never needs it.
    if name == "logger":
        return _failures.logger()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ConfigSource = Union["Mapping[str, Any]", str, "os.PathLike[str]"]
"""What :meth:`CallbackManager.from_config` reads: a mapping, or the path of a TOML, YAML or JSON file."""


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

    def __init__(self, callbacks: Iterable[BaseCallback] | None = None, *, profile: bool | None = None) -> None:
        self._table = HookTable(self)
        self._callbacks: CallbackList[BaseCallback] = CallbackList(callbacks or (), self._table.changed)
        self._validate_callbacks()
        if profile is None:
            profile = bool(os.environ.get("SARA_PROFILE")) and _profiler().profiling_requested()
        elif not isinstance(profile, bool):
            raise TrainingError(f"CallbackManager(): profile: expected True or False, got {safe_repr(profile)}")
        self._table.profiler = _profiler().Profiler() if profile else None
        self._table.update(validate=False, everything=True)

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
        with self._table.lock:
            self._callbacks = CallbackList(callbacks, self._table.changed)
            self._table.changed()

    def profile(self, enabled: bool = True) -> None:
        """Start (or, with ``False``, stop) timing every callback's hooks: see :attr:`timings`.

        The dispatchers are built again, with a timing wrapper around each call when on, the usual ones when off.
        """
        self._table.profile(_profiler().Profiler() if enabled else None)

    @property
    def timings(self) -> Timings | None:
        """What each callback's hooks cost so far, per callback and hook; ``None`` when timing is off.

        See :mod:`~altametris.sara.core.profiling`: turned on by ``profile=True``, :meth:`profile`, a config's
        ``profile = true`` or ``SARA_PROFILE=1``.
        """
        profiler = self._table.profiler
        return None if profiler is None else profiler.timings()

    @property
    def disabled(self) -> tuple[BaseCallback, ...]:
        """The callbacks that failed under ``on_error="disable"`` and are not called again in this run.

        They stay registered: the next ``on_train_start`` (a new run) calls them again.
        """
        return tuple(self._table.disabled.values())

    def _validate_callbacks(self) -> None:
        """Check that every registered callback is a :class:`BaseCallback` instance with a valid error policy.

        Raises:
            TrainingError: naming the position and the offending object.
        """
        for index, callback in enumerate(self._callbacks):
            validate_callback(callback, f"callbacks[{index}]")
            warn_misspelt_hooks(type(callback))

    def add_callback(
        self, callback: BaseCallback, *, on_error: ErrorPolicy | None = None, when: TriggerSpec | None = None
    ) -> None:
        """Register ``callback`` after the others.

        Args:
            callback: the callback.
            on_error: its error policy, set as ``callback.on_error``; by default it keeps the one it has.
            when: its :class:`~altametris.sara.core.triggers.Trigger` (or ``"100ba"``, ``"2ep"``, or a mapping of the
                trigger's keys): its hooks run only when the trigger fires. By default it keeps the one its config
                item gave, if any, and runs at every hook otherwise.

        Raises:
            TrainingError: when ``callback`` is not a :class:`BaseCallback` instance, ``on_error`` no policy, or
                ``when`` no trigger (naming the key).

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
        if on_error is not None:
            _failures.set_policy(callback, on_error, "add_callback()")
        if trigger is not None:
            _triggers().set_trigger(callback, trigger)
        warn_misspelt_hooks(type(callback))
        with self._table.lock:  # checked above: the table takes it as it is (a direct change is checked there)
            list.append(self._callbacks, callback)
            self._table.update(validate=False)

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
        with self._table.lock:
            for index, registered in enumerate(self._callbacks):
                if registered is callback:
                    list.__delitem__(self._callbacks, index)
                    self._table.update(validate=False)
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
        return ", ".join(_named(callback) for callback in self._callbacks)

    # -- dispatch ----------------------------------------------------------------------------------------------
    #
    # The manager's HookTable (``_hooktable``) publishes one dispatcher per hook into the instance's ``__dict__``,
    # where it shadows the hook method below, and rebuilds those that a change of the callback list touches before the
    # change returns. The methods below run only while nothing is published: after a direct change of the list that
    # registered something invalid (they raise its error), or before the first build. ``on_train_start`` is the
    # exception: it starts a run (disabled callbacks are called again, policies and the rank are read again), so its
    # method always runs, and its dispatcher is kept under ``_train_start``.

    def _active(self) -> tuple[BaseCallback, ...]:
        """The callbacks that run in this process: not disabled in this run, and not rank-zero-only off rank 0."""
        return self._table.active

    def _execute_callback_hook(self, hook_name: str, *args: Any, **kwargs: Any) -> None:
        """Call hook ``hook_name`` on every callback, with positional arguments mapped to the hookspec's names.

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
            spec_args = [kwargs.pop(name) for name in hook.argnames]
            getattr(self, hook_name)(*spec_args, **kwargs)
            return
        # Some hookspec argument is missing: callbacks that do not name it still run; the others are told.
        if hook_name == "on_train_start":
            self._table.start_run()
        elif self._table.invalid is not None:
            raise self._table.invalid
        for callback in self._active():
            if not overrides(callback, hook_name):
                continue
            try:
                _dispatch.call_by_name(callback, hook)(**kwargs)
            except Exception as error:
                self._table.failed(callback, hook_name, error, kwargs)

    # -- the hooks: signatures as in the hookspecs (a test holds them to it) ---------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Call ``on_train_start`` on every callback; this starts a run (see :attr:`BaseCallback.on_error`)."""
        self._table.start_run()
        if self._table.profiler is not None:
            self._table.profiler.train_starts(kwargs)
        self._table.dispatcher("on_train_start")(**kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        """Call ``on_train_end`` on every callback."""
        self._table.dispatcher("on_train_end")(**kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Call ``on_epoch_start`` on every callback."""
        self._table.dispatcher("on_epoch_start")(epoch, **kwargs)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_epoch_end`` on every callback."""
        self._table.dispatcher("on_epoch_end")(epoch, metrics, **kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Call ``on_batch_start`` on every callback."""
        self._table.dispatcher("on_batch_start")(batch, **kwargs)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_batch_end`` on every callback."""
        self._table.dispatcher("on_batch_end")(batch, metrics, **kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        """Call ``on_validation_start`` on every callback."""
        self._table.dispatcher("on_validation_start")(**kwargs)

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_validation_end`` on every callback."""
        self._table.dispatcher("on_validation_end")(metrics, **kwargs)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Call ``on_exception`` on every callback; a callback's failure here is logged and the others still run."""
        self._table.dispatcher("on_exception")(error, **kwargs)

    # -- state ---------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every stateful callback's :meth:`~BaseCallback.state_dict`, under its :attr:`~BaseCallback.state_key`.

        Raises:
            StateError: when two stateful callbacks share a ``state_key``.
        """
        state = {key: callback.state_dict() for key, callback in _state.stateful(self._callbacks).items()}
        if self._table.clock.triggers:  # the triggers' counts: every 100th batch stays every 100th after a resume
            state[TRIGGERS_KEY] = self._table.clock.state()
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
        if triggers is not None:
            state_dict = {key: value for key, value in state_dict.items() if key != TRIGGERS_KEY}
        _state.load(_state.stateful(self._callbacks), state_dict, strict=strict)
        if triggers is not None and self._table.clock.triggers:
            self._table.clock.load(triggers)

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, copy, deepcopy) is a new manager over the same kind of list: it starts a new run, with its own
        # dispatchers, its own position and its own lock.
        transient = {*HOOKS, TRAIN_START, "_table", "_callbacks"}
        state = {name: value for name, value in self.__dict__.items() if name not in transient}
        state["callbacks"] = list(self._callbacks)
        state["profile"] = self._table.profiler is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        callbacks = state.pop("callbacks")
        profile = state.pop("profile", False)
        self.__dict__.update(state)
        self._table = HookTable(self)
        self._table.profiler = _profiler().Profiler() if profile else None
        self._callbacks = CallbackList(callbacks, self._table.changed)
        self._table.update(validate=False, everything=True)


def _triggers() -> Any:
    """The triggers' module, imported when a callback is first given a trigger."""
    from . import triggers

    return triggers


def _profiler() -> Any:
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
