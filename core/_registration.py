"""Checks made when a callback is registered, so that mistakes surface then, not in the middle of epoch 37.

Nothing here is public. :class:`~altametris.sara.core.base_callback.CallbackManager` calls :func:`validate_callback`
for every callback it registers and :func:`warn_misspelt_hooks` once per callback class; the testing kit's
conformance check reports :func:`hook_problems`, which finds the same misspelt hooks with the same words.
"""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING

from ._callback import BaseCallback
from ._failures import check_policy
from .exceptions import HookNameWarning, TrainingError
from .hookimpls import is_hookimpl_plugin
from .hookspecs import HOOKS
from .messages import class_name, close_matches, describe_error, safe_repr

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .hookspecs import HookSpec

__all__: list[str] = []

_checked_classes: weakref.WeakSet[type] = weakref.WeakSet()


def validate_callback(callback: object, where: str) -> None:
    """Refuse anything that is not a ``BaseCallback`` instance with a valid error policy.

    Raises:
        TrainingError: naming ``where`` and the offending object (or its policy).
    """
    if not isinstance(callback, BaseCallback):
        if isinstance(callback, type) and issubclass(callback, BaseCallback):
            hint = " (a class: instantiate it)"
        elif is_hookimpl_plugin(callback):
            hint = " (a pluggy plugin with @hookimpl functions: register it with manager.register(), which wraps it)"
        else:
            hint = ""
        found = f"{class_name(callback)} {safe_repr(callback)}"
        raise TrainingError(
            f"{where}: expected a BaseCallback instance, got {found}{hint}",
            callback=callback,
        )
    check_policy(callback, where)


def _own_attributes(cls: type) -> Iterator[tuple[type, str, object]]:
    """``(class, name, value)`` for every ``on_*`` attribute that ``cls`` and its bases below BaseCallback define.

    A name is given once, by the class that wins the method resolution.
    """
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is BaseCallback or not issubclass(klass, BaseCallback):
            continue
        for name, value in vars(klass).items():
            if name.startswith("on_") and name not in seen:
                seen.add(name)
                yield klass, name, value


def _misspelt(name: str) -> str:
    """The end of the sentence that tells about a misspelt hook ``name``: the closest hook, or all of them."""
    close = close_matches(name, HOOKS)
    return f"did you mean {close[0]!r}?" if close else f"the hooks are: {', '.join(HOOKS)}"


def _is_method(value: object) -> bool:
    return callable(value) or isinstance(value, (staticmethod, classmethod))


def misspelt_hooks(cls: type) -> list[tuple[type, str]]:
    """The ``(class, name)`` of every callable ``on_*`` attribute of ``cls`` that is no hook: it would never run."""
    return [(klass, name) for klass, name, value in _own_attributes(cls) if name not in HOOKS and _is_method(value)]


def warn_misspelt_hooks(cls: type) -> None:
    """Warn, once per class, about ``on_*`` methods that are no hook: they would silently never run."""
    if cls in _checked_classes:
        return
    _checked_classes.add(cls)
    strays = misspelt_hooks(cls)
    if not strays:
        return
    import warnings

    for _, name in strays:
        warnings.warn(
            f"{cls.__qualname__.rpartition('<locals>.')[2]}.{name} is not a hook of SARA callbacks "
            f"and will never be called; {_misspelt(name)}",
            HookNameWarning,
            stacklevel=4,
        )


def _label(klass: type, name: str) -> str:
    return f"{klass.__qualname__.rpartition('<locals>.')[2]}.{name}"


def hook_problems(cls: type) -> list[str]:
    """Every hook of ``cls`` that the manager could not call as the hookspecs say, one sentence each.

    Misspelt hook names, attributes that are no methods, ``async def`` hooks and hooks that require an argument the
    hookspec does not have.
    """
    problems: list[str] = []
    for klass, name, raw in _own_attributes(cls):
        spec = HOOKS.get(name)
        if spec is not None:
            problems += _signature_problems(cls, raw, spec, _label(klass, name))
        elif _is_method(raw):
            problems.append(
                f"{_label(klass, name)} is no hook of SARA callbacks and would never be called; {_misspelt(name)}"
            )
    return problems


def _signature_problems(cls: type, raw: object, spec: HookSpec, label: str) -> list[str]:
    takes_self = inspect.isfunction(raw)  # a plain method; static and class methods are read without it
    if not _is_method(raw):
        return [f"{label} is {type(raw).__qualname__} {raw!r}, not a method: the manager cannot call it"]
    function: Callable[..., object] = getattr(cls, spec.name)
    if inspect.iscoroutinefunction(inspect.unwrap(function)):
        return [
            f"{label} is a coroutine function (async def): hooks are called synchronously, its body would never run"
        ]
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as error:
        text = " ".join(describe_error(error).split())
        return [f"{label}: its signature cannot be read ({text}), so its arguments cannot be matched"]
    parameters = list(signature.parameters.values())
    kinds = inspect.Parameter
    if takes_self and parameters and parameters[0].kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD):
        parameters = parameters[1:]  # self
    given = ", ".join(spec.argnames) or "none"
    return [
        f"{label} requires {parameter.name!r}, which is no argument of {spec.name} (its arguments: {given}): "
        f"a trainer that does not pass {parameter.name!r} as a context keyword gets a TrainingError; "
        f"give it a default, or read it from **kwargs"
        for parameter in parameters
        if parameter.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        and parameter.name not in spec.argnames
        and parameter.default is parameter.empty
    ]
