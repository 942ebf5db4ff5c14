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
import weakref
from typing import TYPE_CHECKING, Any, Union

from . import _dispatch
from ._callback_list import CallbackList
from .exceptions import HookNameWarning, StateError, TrainingError
from .hookspecs import HOOKS, Metrics

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Iterator, Mapping

    from ._dispatch import Call, HookFunction

__all__ = ["BaseCallback", "CallbackManager", "ConfigSource", "logger"]

if TYPE_CHECKING:
    import logging

    logger: logging.Logger
    """The logger of the callback machinery (``altametris.sara.core.base_callback``)."""


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # ``logger`` is made on first use: ``logging`` costs about as much to import as pluggy, and a training that
    # never fails never needs it.
    if name == "logger":
        return _logger()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ConfigSource = Union["Mapping[str, Any]", str, "os.PathLike[str]"]
"""What :meth:`CallbackManager.from_config` reads: a mapping, or the path of a TOML, YAML or JSON file."""


class BaseCallback(abc.ABC):  # noqa: B024 - every hook is optional: nothing is abstract, as in the seed
    """Base class of every callback: override the hooks you need; the others do nothing.

    A hook may name fewer arguments than the hookspec (``def on_epoch_end(self, epoch, metrics)``); it is called with
    those it names. Accept ``**kwargs`` to receive the trainer's context keywords (``model=...``, ``control=...``).

    Callbacks whose state must survive a resume override :meth:`state_dict` and :meth:`load_state_dict`; the
    manager files each state under the callback's :attr:`state_key`.
    """

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


_checked_classes: weakref.WeakSet[type] = weakref.WeakSet()


def _warn_misspelt_hooks(cls: type) -> None:
    """Warn, once per class, about ``on_*`` methods that are no hook: they would silently never run."""
    if cls in _checked_classes:
        return
    _checked_classes.add(cls)
    strays = [
        name
        for klass in cls.__mro__
        if klass is not BaseCallback and issubclass(klass, BaseCallback)
        for name, value in vars(klass).items()
        if name.startswith("on_") and name not in HOOKS and callable(value)
    ]
    if not strays:
        return
    import difflib  # only when there is something to suggest: keeps the import of this module light
    import warnings

    for name in dict.fromkeys(strays):
        close = difflib.get_close_matches(name, HOOKS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the hooks are: {', '.join(HOOKS)}"
        warnings.warn(
            f"{cls.__qualname__.rpartition('<locals>.')[2]}.{name} is not a hook of SARA callbacks "
            f"and will never be called; {hint}",
            HookNameWarning,
            stacklevel=4,
        )


def _describe(error: BaseException) -> str:
    """``"ValueError: text"``, robust to exceptions without arguments and to a ``__str__`` that raises."""
    kind = type(error).__qualname__
    try:
        text = str(error)
    except Exception as str_error:
        text = f"<str() failed with {type(str_error).__qualname__}>"
    return f"{kind}: {text}" if text else kind


def _class_name(value: object) -> str:
    """The class's qualified name, without the ``function.<locals>.`` of classes defined in a function."""
    return type(value).__qualname__.rpartition("<locals>.")[2]


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{_class_name(value)} object>"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _overrides(callback: BaseCallback, hook: str) -> bool:
    return getattr(getattr(callback, hook), "__func__", None) is not getattr(BaseCallback, hook)


class CallbackManager:
    r"""Calls every registered callback's hooks, in registration order.

    The manager is what a training loop talks to: it has one method per hook, with the hookspec's signature, and
    calls that hook on every callback that overrides it. A callback's exception is raised as a
    :class:`~altametris.sara.core.exceptions.TrainingError` that names the callback, the hook and the epoch or
    batch; ``KeyboardInterrupt``, ``SystemExit`` and other ``BaseException``\ s pass through untouched.

    Callbacks may be added or removed at any time, also from inside a hook (a callback removing itself, say): the
    change applies from the next hook call. That holds for direct changes of :attr:`callbacks` too.

    Args:
        callbacks: the callbacks, in the order their hooks are called.

    Raises:
        TrainingError: when an item is not a :class:`BaseCallback` instance.

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
        self._validate_callbacks()

    @classmethod
    def from_config(cls, source: ConfigSource, *, allow_import_paths: bool = False) -> CallbackManager:
        """Build a manager from a config: callbacks enabled by plugin name, in order, with parameters.

        Args:
            source: a mapping, or the path (``str`` or ``os.PathLike``) of a ``.toml``, ``.yaml``/``.yml`` or
                ``.json`` file, whose ``callbacks`` key lists plugin names or ``{name, params}`` tables.
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

    def _validate_callbacks(self) -> None:
        """Check that every registered callback is a :class:`BaseCallback` instance.

        Raises:
            TrainingError: naming the position and the offending object.
        """
        for index, callback in enumerate(self._callbacks):
            _check_callback(callback, f"callbacks[{index}]")
            _warn_misspelt_hooks(type(callback))

    def add_callback(self, callback: BaseCallback) -> None:
        """Register ``callback`` after the others.

        Raises:
            TrainingError: when ``callback`` is not a :class:`BaseCallback` instance.
        """
        _check_callback(callback, "add_callback()")
        _warn_misspelt_hooks(type(callback))
        self._callbacks.append(callback)

    def remove_callback(self, callback: BaseCallback) -> None:
        """Unregister ``callback`` (the first registration equal to it).

        Raises:
            TrainingError: when ``callback`` is not registered.
        """
        if callback not in self._callbacks:
            raise TrainingError(
                f"cannot remove {_short_repr(callback)}: it is not registered with this manager "
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
        return ", ".join(type(callback).__name__ for callback in self._callbacks)

    # -- dispatch ----------------------------------------------------------------------------------------------
    #
    # Each hook method below runs only while the manager is stale. It compiles one dispatcher per hook (see
    # ``_dispatch``) and stores it in the instance's ``__dict__`` under the hook's name, where it shadows the method
    # until the callback list changes again (the way ``functools.cached_property`` works). A hook call thus costs
    # one plain function call plus one call per overriding callback.

    def _invalidate(self) -> None:
        for name in HOOKS:
            self.__dict__.pop(name, None)

    def _compile(self) -> dict[str, HookFunction]:
        self._validate_callbacks()
        callbacks = tuple(self._callbacks)
        dispatchers: dict[str, HookFunction] = {}
        for hook in HOOKS.values():
            calls = tuple(
                _dispatch.call_for(callback, hook) for callback in callbacks if _overrides(callback, hook.name)
            )
            fail = self._report_failure if hook.cleanup else self._failure
            dispatchers[hook.name] = _dispatch.compile_dispatcher(hook, calls, fail, self._position)
        self.__dict__.update(dispatchers)
        return dispatchers

    def _failure(self, call: Call, hook: str, error: BaseException, arguments: Mapping[str, object]) -> TrainingError:
        callback = call[0]
        epoch = arguments.get("epoch", self._position.get("epoch"))
        batch = arguments.get("batch")
        where = ", ".join(
            f"{name} {value}" for name, value in (("epoch", epoch), ("batch", batch)) if isinstance(value, int)
        )
        prefix = f"callback {_class_name(callback)!r} failed in {hook}" + (f" ({where})" if where else "")
        missing = isinstance(error, _dispatch.MissingArgumentError)
        failure = TrainingError(
            f"{prefix}: {error if missing else _describe(error)}",
            callback=callback,
            hook=hook,
            epoch=epoch if isinstance(epoch, int) else None,
            batch=batch if isinstance(batch, int) else None,
        )
        # What ``raise ... from error`` would do; a missing argument is our own finding and needs no cause.
        failure.__cause__ = None if missing else error
        failure.__suppress_context__ = True
        return failure

    def _report_failure(
        self, call: Call, hook: str, error: BaseException, arguments: Mapping[str, object]
    ) -> TrainingError:
        """Log the failure of a cleanup hook, which must not hide the error being handled."""
        failure = self._failure(call, hook, error, arguments)
        _logger().error("%s (ignored: %s must reach every callback)", failure, hook, exc_info=error)
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
        for callback in tuple(self._callbacks):
            if _overrides(callback, hook_name):
                call = _dispatch.call_by_name(callback, hook)
                try:
                    call.keyword(**kwargs)
                except Exception as error:
                    if not hook.cleanup:
                        raise self._failure(call, hook_name, error, kwargs) from error
                    self._report_failure(call, hook_name, error, kwargs)

    # -- the hooks: signatures as in the hookspecs (a test holds them to it) ---------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Call ``on_train_start`` on every callback."""
        self._compile()["on_train_start"](**kwargs)

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

    def _stateful(self) -> dict[str, BaseCallback]:
        by_key: dict[str, BaseCallback] = {}
        for callback in self._callbacks:
            if type(callback).state_dict is BaseCallback.state_dict:
                continue
            key = callback.state_key
            if key in by_key:
                raise StateError(
                    f"two stateful callbacks share the state_key {key!r}: {by_key[key]!r} and {callback!r}; "
                    f"give one of them another state_key so that their states do not overwrite each other",
                    key=key,
                    callbacks=(by_key[key], callback),
                )
            by_key[key] = callback
        return by_key

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every stateful callback's :meth:`~BaseCallback.state_dict`, under its :attr:`~BaseCallback.state_key`.

        Raises:
            StateError: when two stateful callbacks share a ``state_key``.
        """
        return {key: callback.state_dict() for key, callback in self._stateful().items()}

    def load_state_dict(self, state_dict: Mapping[str, Mapping[str, Any]], *, strict: bool = True) -> None:
        """Give each stateful callback its saved state; callbacks absent from ``state_dict`` keep a fresh state.

        Args:
            state_dict: what :meth:`state_dict` returned.
            strict: refuse entries that no registered callback claims (a renamed ``state_key``, a missing callback).

        Raises:
            StateError: for unclaimed entries (when ``strict``), or a callback that refuses its state.
        """
        stateful = self._stateful()
        unclaimed = sorted(set(state_dict) - set(stateful))
        if strict and unclaimed:
            raise StateError(
                f"the saved state has entries no registered callback claims: {unclaimed}; registered stateful "
                f"callbacks: {sorted(stateful) or 'none'}; register those callbacks, or load with strict=False",
                key=unclaimed[0],
            )
        for key, callback in stateful.items():
            if key not in state_dict:
                continue
            try:
                callback.load_state_dict(state_dict[key])
            except Exception as error:
                raise StateError(
                    f"callback {_class_name(callback)!r} could not load its state {key!r}: {_describe(error)}",
                    key=key,
                    callbacks=(callback,),
                ) from error

    def __getstate__(self) -> dict[str, Any]:
        state = {name: value for name, value in self.__dict__.items() if name not in HOOKS}
        state["_callbacks"] = list(self._callbacks)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._callbacks = CallbackList(state["_callbacks"], self._invalidate)


def _check_callback(callback: object, where: str) -> None:
    if not isinstance(callback, BaseCallback):
        hint = " (a class: instantiate it)" if isinstance(callback, type) and issubclass(callback, BaseCallback) else ""
        found = f"{_class_name(callback)} {_short_repr(callback)}"
        raise TrainingError(
            f"{where}: expected a BaseCallback instance, got {found}{hint}",
            callback=callback,
        )
