"""Plain pluggy plugins as callbacks: a module, class or object whose functions carry ``@hookimpl``.

A pluggy user writes hook implementations as functions marked with the ``sara`` project's
:data:`~altametris.sara.core.hookspecs.hookimpl` marker, in a module or on an object, and names only the arguments
it needs, as pluggy's rules say. :class:`HookimplCallback` turns such a plugin into a
:class:`~altametris.sara.core.base_callback.BaseCallback`, so that it runs in the manager with the same order, error
wrapping, error policies and speed as any callback: its implementations become the callback's hooks, called
directly by the manager's hook methods.

The rules, as pluggy's (checked when the plugin is wrapped, not at the first call):

* an implementation's name is the hook's, or the marker says which hook with ``specname``;
* it may name only the hookspec's arguments (``epoch``, ``metrics`` ...), in any order and any subset; SARA also
  gives the trainer's context keywords to an implementation that takes ``**kwargs`` (pluggy gives it nothing);
* an unknown hook name is an error unless the marker says ``optionalhook=True``;
* ``hookwrapper``/``wrapper``, ``tryfirst`` and ``trylast`` are refused: SARA calls callbacks in registration (config)
  order, and a wrapper has no place in that order.

Such a plugin is registered with
:meth:`CallbackManager.register <altametris.sara.core.base_callback.CallbackManager.register>` (which wraps it), or
enabled by name: an entry point of the ``sara.callbacks`` group may name a module
(``my_pkg.hooks``), an object (``my_pkg.hooks:plugin``) or a class that is no ``BaseCallback`` (built with the
config's params, then wrapped).

Example:
    >>> from altametris.sara.core import CallbackManager
    >>> from altametris.sara.core.hookspecs import hookimpl
    >>> class Printer:
    ...     @hookimpl
    ...     def on_epoch_end(self, metrics, epoch):
    ...         print(f"epoch {epoch}: {metrics}")
    ...     @hookimpl(specname="on_train_end")
    ...     def done(self):
    ...         print("done")
    >>> manager = CallbackManager()
    >>> callback = manager.register(Printer())
    >>> manager
    CallbackManager(callbacks=[Printer])
    >>> manager.on_epoch_end(0, {"loss": 0.5})
    epoch 0: {'loss': 0.5}
    >>> manager.on_train_end()
    done
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any, Callable

from ._callback import BaseCallback
from .exceptions import TrainingError
from .hookspecs import HOOKS, PROJECT_NAME
from .messages import class_name, did_you_mean, safe_repr

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HookimplCallback", "hookimpls", "is_hookimpl_plugin"]

_MARK = f"{PROJECT_NAME}_impl"
_REFUSED = {
    "hookwrapper": "hook wrappers are not supported: SARA calls callbacks in registration order",
    "wrapper": "hook wrappers are not supported: SARA calls callbacks in registration order",
    "tryfirst": "SARA calls callbacks in registration order: put this plugin first in the config instead",
    "trylast": "SARA calls callbacks in registration order: put this plugin last in the config instead",
}


def _marked(plugin: object) -> list[tuple[str, Callable[..., object], Mapping[str, object]]]:
    """``(attribute, function, marker options)`` for every ``@hookimpl`` function of ``plugin``, in name order."""
    found: list[tuple[str, Callable[..., object], Mapping[str, object]]] = []
    for attribute in dir(plugin):
        try:
            value = getattr(plugin, attribute)
        except Exception:  # a property that raises is no hook implementation
            continue
        options = getattr(value, _MARK, None)
        if isinstance(options, dict) and inspect.isroutine(value):
            found.append((attribute, value, options))
    return found


def is_hookimpl_plugin(plugin: object) -> bool:
    """Whether ``plugin`` (a module, class or object, not a ``BaseCallback``) has ``@hookimpl`` functions."""
    if isinstance(plugin, BaseCallback) or (isinstance(plugin, type) and issubclass(plugin, BaseCallback)):
        return False
    return bool(_marked(plugin))


def _label(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    if isinstance(plugin, type):
        return plugin.__qualname__.rpartition("<locals>.")[2]
    return class_name(plugin)


def hookimpls(plugin: object) -> dict[str, Callable[..., object]]:
    """The hook implementations of a pluggy plugin, by hook name, checked against the hookspecs.

    Raises:
        TrainingError: an implementation names an unknown hook, an argument the hookspec does not have, or an option
            SARA does not support; or the plugin has no implementation at all. The message names the plugin, the
            function and the fix.
    """
    label = _label(plugin)
    found: dict[str, Callable[..., object]] = {}
    for attribute, function, options in _marked(plugin):
        where = f"pluggy plugin {label!r}: {attribute}"
        named = options.get("specname") or attribute
        spec = HOOKS.get(named) if isinstance(named, str) else None
        if spec is None:
            if options.get("optionalhook"):
                continue
            raise TrainingError(
                f"{where} implements {safe_repr(named)}, which is no hook of SARA callbacks; "
                f"{did_you_mean(named, HOOKS)}the hooks are: {', '.join(HOOKS)} "
                "(mark it @hookimpl(optionalhook=True) if it is meant for another version)",
                hook=None,
            )
        hook = spec.name
        refused = [f"{option}=True ({why})" for option, why in _REFUSED.items() if options.get(option)]
        if refused:
            raise TrainingError(f"{where}: @hookimpl({', '.join(refused)})", hook=hook)
        if hook in found:
            raise TrainingError(
                f"{where}: a second implementation of {hook}; one plugin implements a hook once", hook=hook
            )
        unbound = isinstance(plugin, type) and not isinstance(inspect.getattr_static(plugin, attribute), staticmethod)
        _check_arguments(function, spec.argnames, where, hook, skip_first=unbound)
        found[hook] = function
    if not found:
        raise TrainingError(
            f"{label!r} has no @hookimpl function: mark its hook implementations with "
            "altametris.sara.core.hookspecs.hookimpl, or derive a class from BaseCallback",
            hook=None,
        )
    return found


def _check_arguments(
    function: Callable[..., object], spec: tuple[str, ...], where: str, hook: str, *, skip_first: bool
) -> None:
    """Pluggy's rule: an implementation requires only arguments of the hookspec (``self`` of a class's method aside)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[1 if skip_first else 0 :]
    except (TypeError, ValueError):
        return
    unknown = [
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.default is parameter.empty
        and parameter.name not in spec
    ]
    if unknown:
        raise TrainingError(
            f"{where}: argument(s) {unknown} are declared in the hookimpl but can not be found in the hookspec "
            f"of {hook} (its arguments: {', '.join(spec) or 'none'}); name only those, or give the others a default",
            hook=hook,
        )


class HookimplCallback(BaseCallback):
    """A pluggy plugin as a callback: each ``@hookimpl`` function is the hook it implements.

    Args:
        plugin: a module, class or object whose functions carry ``@hookimpl`` (see the module's rules).
        name: how messages and ``repr(manager)`` name it; the plugin's module, class or class-of-object name by
            default.

    Raises:
        TrainingError: as :func:`hookimpls`.

    Attributes:
        plugin: the wrapped plugin.
        name: its name in messages.
    """

    def __new__(cls, plugin: object, *, name: str | None = None) -> HookimplCallback:
        """One subclass per plugin name, so that error messages and ``repr(manager)`` name the plugin."""
        label = name or _label(plugin)
        named = type(label, (cls,), {"__module__": cls.__module__, "__qualname__": label})
        instance: HookimplCallback = super().__new__(named)
        return instance

    def __init__(self, plugin: object, *, name: str | None = None) -> None:
        self.plugin = plugin
        self.name = name or _label(plugin)
        for hook, function in hookimpls(plugin).items():
            setattr(self, hook, function)  # shadows BaseCallback's no-op: the manager calls the implementation

    def __repr__(self) -> str:
        return f"HookimplCallback({safe_repr(self.plugin)}, name={self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.plugin, self.name, self.__dict__.get("on_error")))


def _rebuild(plugin: object, name: str, on_error: Any) -> HookimplCallback:
    """What unpickling and ``copy`` call: the same plugin, name and error policy."""
    callback = HookimplCallback(plugin, name=name)
    if on_error is not None:
        callback.on_error = on_error
    return callback
