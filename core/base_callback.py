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

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Union

from . import _dispatch, _failures, _state
from ._callback_list import CallbackList
from ._failures import ErrorPolicy, policy_of, short_repr
from ._registration import check_callback, warn_misspelt_hooks
from .exceptions import TrainingError
from .hookspecs import HOOKS, Metrics

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Iterator, Mapping

    from ._dispatch import Call, HookFunction

__all__ = ["BaseCallback", "CallbackManager", "ConfigSource", "ErrorPolicy", "logger"]

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


class BaseCallback(abc.ABC):  # noqa: B024 - every hook is optional: nothing is abstract, as in the seed
    """Base class of every callback: override the hooks you need; the others do nothing.

    A hook may name fewer arguments than the hookspec (``def on_epoch_end(self, epoch, metrics)``); it is called with
    those it names. Accept ``**kwargs`` to receive the trainer's context keywords (``model=...``, ``control=...``).

    Callbacks whose state must survive a resume override :meth:`state_dict` and :meth:`load_state_dict`; the
    manager files each state under the callback's :attr:`state_key`.

    What the manager does when a hook raises is the callback's :attr:`on_error` policy: a class may set another
    default (``on_error = "warn"`` for a logger whose server may be down), and an instance its own, directly,
    through :meth:`CallbackManager.add_callback` or through the ``on_error`` key of its config item.

    Example:
        >>> class Uploader(BaseCallback):
        ...     on_error = "warn"  # a network error must not end the training
        ...     def on_epoch_end(self, epoch, metrics):
        ...         raise ConnectionError("server down")
        >>> manager = CallbackManager([Uploader()])
        >>> manager.on_epoch_end(0, {})  # logged as a warning; the training goes on
        >>> manager
        CallbackManager(callbacks=[Uploader(on_error='warn')])
    """

    on_error: ErrorPolicy = "raise"
    """The error policy: ``"raise"`` (the default) lets the :class:`~altametris.sara.core.exceptions.TrainingError`
    reach the trainer; ``"warn"`` logs it (callback, hook, epoch or batch, and the traceback the first time) and goes on
    with the next callback; ``"disable"`` logs it once and stops calling the callback for the rest of the run, after
    giving it ``on_exception`` with its own failure so that it closes its files. Stop requests
    (:class:`~altametris.sara.core.control.StopTraining`), ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
    The manager reads it when it (re)builds its dispatchers: after a change of its callback list, and at every
    ``on_train_start``."""

    rank_zero_only: ClassVar[bool] = False
    """Whether the callback runs on rank 0 only, in a training of several processes (under ``torchrun``).

    Callbacks that write files or print set it to ``True``, or every rank would write the same file; the manager
    then leaves them out on the other ranks (see :mod:`~altametris.sara.core.distributed`). It is read when the
    manager builds its dispatchers, at the first hook call after a change of its callbacks."""

    def on_train_start(self, **kwargs: Any) -> None:
        """Called once, before the first epoch."""

    def on_train_end(self, **kwargs: Any) -> None:
        """Called once, after the last epoch (or a stop request), when the training did not fail."""

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Called at the start of every epoch (``epoch`` is 0-indexed)."""

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Called at the end of every epoch, after validation, with the epoch's metrics."""

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Called before every training batch (``batch`` is 0-indexed within the epoch)."""

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Called after every training batch with the batch's metrics."""

    def on_validation_start(self, **kwargs: Any) -> None:
        """Called before the validation of every epoch."""

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Called after the validation of every epoch with the validation metrics."""

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Called when the training fails, before the trainer re-raises ``error``: close files here."""

    @property
    def state_key(self) -> str:
        """The key of this callback's state in :meth:`CallbackManager.state_dict`; unique among stateful callbacks.

        Defaults to the class's qualified name: override it when one training uses two stateful instances of a class.
        """
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """The state to save with a checkpoint so that a resumed training continues where it stopped."""
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""


def _overrides(callback: BaseCallback, hook: str) -> bool:
    return getattr(getattr(callback, hook), "__func__", None) is not getattr(BaseCallback, hook)


class CallbackManager:
    r"""Calls every registered callback's hooks, in registration order.

    The manager is what a training loop talks to: it has one method per hook, with the hookspec's signature, and
    calls that hook on every callback that overrides it. A callback's exception is raised as a
    :class:`~altametris.sara.core.exceptions.TrainingError` that names the callback, the hook and the epoch or
    batch; ``KeyboardInterrupt``, ``SystemExit`` and other ``BaseException``\ s pass through untouched. A callback
    whose :attr:`~BaseCallback.on_error` policy is ``"warn"`` or ``"disable"`` has its failures logged instead, and
    the hook goes on with the next callback.

    Callbacks may be added or removed at any time, also from inside a hook (a callback removing itself, say): the
    change applies from the next hook call. That holds for direct changes of :attr:`callbacks` too.

    Args:
        callbacks: the callbacks, in the order their hooks are called.

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

    def __init__(self, callbacks: Iterable[BaseCallback] | None = None) -> None:
        self._callbacks: CallbackList[BaseCallback] = CallbackList(callbacks or (), self._invalidate)
        self._position: dict[str, object] = {}
        self._reset_run()
        self._validate_callbacks()

    def _reset_run(self) -> None:
        self._disabled: dict[int, BaseCallback] = {}  # by id(): callbacks need not be hashable
        self._warned: set[tuple[int, str]] = set()  # (callback, hook) pairs whose traceback was logged
        self._policies: tuple[tuple[BaseCallback, ErrorPolicy], ...] = ()  # as compiled into the dispatchers

    @classmethod
    def from_config(cls, source: ConfigSource, *, allow_import_paths: bool = False) -> CallbackManager:
        """Build a manager from a config: callbacks enabled by plugin name, in order, with parameters.

        Args:
            source: a mapping, or the path (``str`` or ``os.PathLike``) of a ``.toml``, ``.yaml``/``.yml`` or
                ``.json`` file, whose ``callbacks`` key lists plugin names or ``{name, params, enabled, on_error}``
                tables.
            allow_import_paths: also accept ``"module:Class"`` items that name no registered plugin. Off by
                default: a config is data and names registered plugins only.

        Raises:
            ConfigError: the file or mapping is malformed (the message names the file and the key).
            PluginError: a plugin is unknown, broken, or refuses its parameters.
        """
        from .config import load_callbacks

        return cls(load_callbacks(source, allow_import_paths=allow_import_paths))

    # -- the callback list -------------------------------------------------------------------------------------

    @property
    def callbacks(self) -> list[BaseCallback]:
        """The registered callbacks, in call order; changing this list takes effect from the next hook call."""
        return self._callbacks

    @callbacks.setter
    def callbacks(self, callbacks: Iterable[BaseCallback]) -> None:
        self._callbacks = CallbackList(callbacks, self._invalidate)
        self._invalidate()

    @property
    def disabled(self) -> tuple[BaseCallback, ...]:
        """The callbacks that failed under ``on_error="disable"`` and are not called again in this run.

        They stay registered: the next ``on_train_start`` (a new run) calls them again.
        """
        return tuple(self._disabled.values())

    def _validate_callbacks(self) -> None:
        """Check that every registered callback is a :class:`BaseCallback` instance with a valid error policy.

        Raises:
            TrainingError: naming the position and the offending object.
        """
        for index, callback in enumerate(self._callbacks):
            check_callback(callback, f"callbacks[{index}]")
            warn_misspelt_hooks(type(callback))

    def add_callback(self, callback: BaseCallback, *, on_error: ErrorPolicy | None = None) -> None:
        """Register ``callback`` after the others.

        Args:
            callback: the callback.
            on_error: its error policy, set as ``callback.on_error``; by default it keeps the one it has.

        Raises:
            TrainingError: when ``callback`` is not a :class:`BaseCallback` instance, or ``on_error`` no policy.

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
        check_callback(callback, "add_callback()")
        if on_error is not None:
            _failures.set_policy(callback, on_error, "add_callback()")
        warn_misspelt_hooks(type(callback))
        self._callbacks.append(callback)

    def remove_callback(self, callback: BaseCallback) -> None:
        """Unregister ``callback`` (the first registration equal to it).

        Raises:
            TrainingError: when ``callback`` is not registered.
        """
        if callback not in self._callbacks:
            raise TrainingError(
                f"cannot remove {short_repr(callback)}: it is not registered with this manager "
                f"(registered: {self._class_names() or 'none'})",
                callback=callback,
            )
        self._callbacks.remove(callback)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __iter__(self) -> Iterator[BaseCallback]:
        return iter(tuple(self._callbacks))

    def __contains__(self, callback: object) -> bool:
        return callback in self._callbacks

    def __repr__(self) -> str:
        return f"{type(self).__name__}(callbacks=[{self._class_names()}])"

    def _class_names(self) -> str:
        return ", ".join(_named(callback) for callback in self._callbacks)

    # -- dispatch ----------------------------------------------------------------------------------------------
    #
    # Each hook method below runs only while the manager is stale. It compiles one dispatcher per hook (see
    # ``_dispatch``) and stores it in the instance's ``__dict__`` under the hook's name, where it shadows the method
    # until the callback list changes again (the way ``functools.cached_property`` works). A hook call thus costs
    # one plain function call plus one call per overriding callback. ``on_train_start`` is the exception: it starts
    # a run (disabled callbacks are called again, policies are read again), so its method always runs, and its
    # dispatcher is kept under ``_train_start``.

    def _invalidate(self) -> None:
        for name in HOOKS:
            self.__dict__.pop(name, None)
        self.__dict__.pop("_train_start", None)

    def _active(self) -> tuple[BaseCallback, ...]:
        """The callbacks that run in this process: not disabled in this run, and not rank-zero-only off rank 0."""
        from .distributed import rank_info  # imported with the first hook call, not with the package

        rank = rank_info().rank
        return tuple(
            callback
            for callback in self._callbacks
            if id(callback) not in self._disabled and not (rank and callback.rank_zero_only)
        )

    def _compile(self) -> dict[str, HookFunction]:
        self._validate_callbacks()
        callbacks = self._active()
        self._policies = tuple((callback, policy_of(callback)) for callback in callbacks)
        dispatchers: dict[str, HookFunction] = {}
        for hook in HOOKS.values():
            calls = tuple(
                _dispatch.call_for(callback, hook) for callback in callbacks if _overrides(callback, hook.name)
            )
            if hook.cleanup:
                dispatchers[hook.name] = _dispatch.compile_dispatcher(hook, calls, self._report_failure, self._position)
                continue
            tolerant = frozenset(index for index, call in enumerate(calls) if policy_of(call[0]) != "raise")
            dispatchers[hook.name] = _dispatch.compile_dispatcher(
                hook, calls, self._failure, self._position, tolerate=self._tolerate, tolerant=tolerant
            )
        self.__dict__.update(dispatchers)
        self.__dict__["_train_start"] = self.__dict__.pop("on_train_start")
        return dispatchers

    def _start_run(self) -> None:
        """A new run: call disabled callbacks again, and read the error policies again if one has changed."""
        if self._disabled or any(policy_of(callback) != policy for callback, policy in self._policies):
            self._invalidate()
        self._disabled.clear()
        self._warned.clear()

    def _failure(self, call: Call, hook: str, error: BaseException, arguments: Mapping[str, object]) -> TrainingError:
        return _failures.wrap(call[0], hook, error, arguments, self._position)

    def _report_failure(
        self, call: Call, hook: str, error: BaseException, arguments: Mapping[str, object]
    ) -> TrainingError:
        """Log the failure of a cleanup hook, which must not hide the error being handled."""
        failure = self._failure(call, hook, error, arguments)
        _failures.log_cleanup_failure(failure, hook)
        return failure

    def _tolerate(self, call: Call, hook: str, error: BaseException, arguments: Mapping[str, object]) -> TrainingError:
        """Apply a ``"warn"`` or ``"disable"`` policy to a callback's failure: log it, and go on."""
        failure = self._failure(call, hook, error, arguments)
        callback: BaseCallback = call[0]  # type: ignore[assignment]  # the manager only registers callbacks
        if policy_of(callback) != "disable":
            key = (id(callback), hook)
            _failures.log_tolerated(failure, traceback=key not in self._warned)
            self._warned.add(key)
            return failure
        if id(callback) in self._disabled:  # the same instance registered twice, failing twice in one hook call
            return failure
        self._disabled[id(callback)] = callback
        self._invalidate()  # the current hook call goes on over the list as it was; the next ones skip it
        _failures.log_disabled(failure)
        if _overrides(callback, "on_exception"):
            spec = HOOKS[hook].argnames
            context = {name: value for name, value in arguments.items() if name not in spec}
            cleanup = _dispatch.call_by_name(callback, HOOKS["on_exception"])
            try:
                cleanup.keyword(error=failure, **context)
            except Exception as cleanup_error:
                self._report_failure(cleanup, "on_exception", cleanup_error, {"error": failure, **context})
        return failure

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
            self._start_run()
        for callback in self._active():
            if not _overrides(callback, hook_name):
                continue
            call = _dispatch.call_by_name(callback, hook)
            try:
                call.keyword(**kwargs)
            except Exception as error:
                if hook.cleanup:
                    self._report_failure(call, hook_name, error, kwargs)
                elif policy_of(callback) == "raise":
                    raise self._failure(call, hook_name, error, kwargs) from error
                else:
                    self._tolerate(call, hook_name, error, kwargs)

    # -- the hooks: signatures as in the hookspecs (a test holds them to it) ---------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Call ``on_train_start`` on every callback; this starts a run (see :attr:`BaseCallback.on_error`)."""
        self._start_run()
        start = self.__dict__.get("_train_start")
        if start is None:
            start = self._compile()["on_train_start"]
        start(**kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        """Call ``on_train_end`` on every callback."""
        self._compile()["on_train_end"](**kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Call ``on_epoch_start`` on every callback."""
        self._compile()["on_epoch_start"](epoch, **kwargs)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_epoch_end`` on every callback."""
        self._compile()["on_epoch_end"](epoch, metrics, **kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Call ``on_batch_start`` on every callback."""
        self._compile()["on_batch_start"](batch, **kwargs)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_batch_end`` on every callback."""
        self._compile()["on_batch_end"](batch, metrics, **kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        """Call ``on_validation_start`` on every callback."""
        self._compile()["on_validation_start"](**kwargs)

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Call ``on_validation_end`` on every callback."""
        self._compile()["on_validation_end"](metrics, **kwargs)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Call ``on_exception`` on every callback; a callback's failure here is logged and the others still run."""
        self._compile()["on_exception"](error, **kwargs)

    # -- state ---------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every stateful callback's :meth:`~BaseCallback.state_dict`, under its :attr:`~BaseCallback.state_key`.

        Raises:
            StateError: when two stateful callbacks share a ``state_key``.
        """
        return {key: callback.state_dict() for key, callback in _state.stateful(self._callbacks).items()}

    def load_state_dict(self, state_dict: Mapping[str, Mapping[str, Any]], *, strict: bool = True) -> None:
        """Give each stateful callback its saved state; callbacks absent from ``state_dict`` keep a fresh state.

        Args:
            state_dict: what :meth:`state_dict` returned.
            strict: refuse entries that no registered callback claims (a renamed ``state_key``, a missing callback).

        Raises:
            StateError: for unclaimed entries (when ``strict``), or a callback that refuses its state.
        """
        _state.load(_state.stateful(self._callbacks), state_dict, strict=strict)

    def __getstate__(self) -> dict[str, Any]:
        transient = {*HOOKS, "_train_start", "_disabled", "_warned", "_policies"}  # a copy starts a new run
        state = {name: value for name, value in self.__dict__.items() if name not in transient}
        state["_callbacks"] = list(self._callbacks)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._callbacks = CallbackList(state["_callbacks"], self._invalidate)
        self._reset_run()


def _named(callback: object) -> str:
    """A callback as the manager's ``repr`` shows it: its class, and its error policy when not the default."""
    try:
        policy = getattr(callback, "on_error", "raise")
    except Exception:  # a property that raises: refused at the next hook call, shown here
        policy = "<unreadable>"
    return type(callback).__name__ + ("" if policy == "raise" else f"(on_error={short_repr(policy)})")
