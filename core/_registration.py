"""Checks made when a callback is registered, so that mistakes surface then, not in the middle of epoch 37.

Nothing here is public. :class:`~altametris.sara.core.base_callback.CallbackManager` calls :func:`validate_callback`
for every callback it registers and :func:`warn_misspelt_hooks` once per callback class; the testing kit's
conformance check reports :func:`hook_problems`, which finds the same misspelt hooks with the same words.
"""

from __future__ import annotations

import contextlib
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
    from collections.abc import Iterator

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
    problems = refusals(callback)
    if problems:
        listed = "; ".join(problems)
        raise TrainingError(f"{where}: {class_name(callback)} cannot be registered: {listed}", callback=callback)


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
    """Every way ``cls``'s hooks do not fit the hookspecs, one sentence each: the conformance check's list.

    What :func:`refusals` finds (the manager refuses those), and, as advice, hooks that require an argument that is no
    hookspec argument (a trainer that does not pass it as a context keyword makes them fail).
    """
    problems: list[str] = []
    for klass, name, raw in _own_attributes(cls):
        spec = HOOKS.get(name)
        label = _label(klass, name)
        if spec is None:
            if _is_method(raw):
                problems.append(f"{label} is no hook of SARA callbacks and would never be called; {_misspelt(name)}")
            continue
        refused = _refusals(getattr(cls, name), raw, spec, label, skip_self=inspect.isfunction(raw))
        problems += refused or _advice(getattr(cls, name), spec, label, skip_self=inspect.isfunction(raw))
    return problems


_refused_classes: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _order_refusals(cls: type) -> Iterator[str]:
    """``run_before`` and ``run_after`` that are no tuples of plugin names (a string would be read letter by letter)."""
    for attribute in ("run_before", "run_after"):
        value = getattr(cls, attribute, ())
        if isinstance(value, str):
            yield f"{attribute} must be a tuple of plugin names, got the string {safe_repr(value)}: write ({value!r},)"
        elif not isinstance(value, (tuple, list)) or not all(isinstance(name, str) for name in value):
            yield f"{attribute} must be a tuple of plugin names, got {safe_repr(value)}"


def refusals(callback: object) -> list[str]:
    """Why the manager cannot call ``callback``'s hooks as the hookspecs say, one sentence each; ``[]`` when it can.

    ``async def`` and generator hooks (their body would never run), attributes that are no functions, signatures that
    cannot be read, and a required parameter that looks like a misspelt hookspec argument (``metric`` for
    ``metrics``). Read once per class, and for hooks assigned on the instance itself.
    """
    cls = type(callback)
    found = _refused_classes.get(cls)
    if found is None:
        found = tuple(
            problem
            for klass, name, raw in _own_attributes(cls)
            if name in HOOKS
            for problem in _refusals(
                getattr(cls, name), raw, HOOKS[name], _label(klass, name), skip_self=inspect.isfunction(raw)
            )
        ) + tuple(_order_refusals(cls))
        with contextlib.suppress(TypeError):
            _refused_classes[cls] = found
    own = getattr(callback, "__dict__", {})
    if not any(name in own for name in HOOKS):
        return list(found)
    label = class_name(callback)
    return [
        *found,
        *(
            problem
            for name in HOOKS
            if name in own
            for problem in _refusals(
                own[name], own[name], HOOKS[name], f"{label}.{name} (set on the instance)", skip_self=False
            )
        ),
    ]


def _refusals(function: object, raw: object, spec: HookSpec, label: str, *, skip_self: bool) -> list[str]:
    if not _is_method(raw) or not callable(function):
        return [f"{label} is {type(raw).__qualname__} {safe_repr(raw)}, not a method: the manager cannot call it"]
    inner = inspect.unwrap(function)
    for test, what in (
        (inspect.iscoroutinefunction, "a coroutine function (async def)"),
        (inspect.isasyncgenfunction, "an asynchronous generator function"),
        (inspect.isgeneratorfunction, "a generator function (it yields)"),
    ):
        if test(inner):
            return [
                f"{label} is {what}: hooks are called synchronously and their result is dropped, so its body would "
                "never run; make it a plain def (hand asynchronous work to a thread or an event loop of your own)"
            ]
    parameters = _parameters(function, label, skip_self=skip_self)
    if isinstance(parameters, str):
        return [parameters]
    named = {parameter.name for parameter in parameters}
    found = []
    for parameter in parameters:
        if parameter.name in spec.argnames or parameter.default is not parameter.empty:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        close = [name for name in close_matches(parameter.name, spec.argnames) if name not in named]
        if close:
            found.append(
                f"{label} requires {parameter.name!r}, which is no argument of {spec.name}: did you mean "
                f"{close[0]!r}? (its arguments: {', '.join(spec.argnames)}); rename the parameter"
            )
    return found


def _advice(function: object, spec: HookSpec, label: str, *, skip_self: bool) -> list[str]:
    parameters = _parameters(function, label, skip_self=skip_self)
    if isinstance(parameters, str):
        return []
    given = ", ".join(spec.argnames) or "none"
    return [
        f"{label} requires {parameter.name!r}, which is no argument of {spec.name} (its arguments: {given}): "
        f"a trainer that does not pass {parameter.name!r} as a context keyword gets a TrainingError; "
        f"give it a default, or read it from **kwargs"
        for parameter in parameters
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        and parameter.name not in spec.argnames
        and parameter.default is parameter.empty
    ]


def _parameters(function: object, label: str, *, skip_self: bool) -> list[inspect.Parameter] | str:
    """``function``'s parameters (``self`` left out), or why they cannot be read."""
    try:
        parameters = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        text = " ".join(describe_error(error).split())
        return f"{label}: its signature cannot be read ({text}), so its arguments cannot be matched"
    kinds = inspect.Parameter
    if skip_self and parameters and parameters[0].kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD):
        parameters = parameters[1:]
    return parameters
