"""How one callback's hook is called: an :class:`Entry`, decided once, when the callback is registered.

Nothing here is public. Each callback's hook is called the way pluggy calls hook implementations, with the arguments
it names, taken from the hookspec's arguments and the trainer's context keywords. The manager's loop makes one of two
calls, ``call(batch, metrics)`` or, when the trainer passed context keywords and the entry takes them,
``call(batch, metrics, **kwargs)`` (with only the first arguments, ``call(batch)``, for a method that names only
those); :func:`entry_for` decides which function makes that call right:

* a method whose parameters are the hookspec's arguments, or the first of them, in order (and perhaps ``*args``), is
  called directly, with those arguments; its entry takes the context when the method accepts ``**kwargs``;
* any other method (arguments in another order, keyword-only or context arguments by name) is called through an
  adapter that picks its arguments by name and reports one it requires that the trainer did not pass.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .exceptions import MissingArgumentError

if TYPE_CHECKING:
    from .hookspecs import HookSpec

__all__: list[str] = []

HookFunction = Callable[..., object]
"""A callable that receives a hook's arguments."""


class Entry(NamedTuple):
    """One callback's hook as the manager calls it.

    Attributes:
        callback: whose hook it is (``None`` for the manager's own observers: the triggers' clock, the timings).
        hook: the hook's name.
        call: the function the loop calls with the hookspec's arguments by position.
        context: whether ``call`` also receives the trainer's context keywords.
        arity: how many of the hookspec's arguments ``call`` takes, from the first (``def on_batch_end(self,
            batch)`` takes 1 of ``batch, metrics``); ``None``: all of them.
    """

    callback: object
    hook: str
    call: HookFunction
    context: bool
    arity: int | None = None


class Parameters(NamedTuple):
    """The parameters of one hook function, as far as calling it goes (``self`` excluded)."""

    positional_only: tuple[str, ...]
    named: tuple[str, ...]
    required: tuple[str, ...]
    var_positional: bool
    var_keyword: bool
    only_positional_or_keyword: bool
    """Every named parameter may be passed by position (none is keyword-only)."""


_analysed: weakref.WeakKeyDictionary[Any, Parameters] = weakref.WeakKeyDictionary()


def parameters_of(method: HookFunction) -> Parameters:
    """Read ``method``'s parameters, once per underlying function."""
    function = getattr(method, "__func__", method)
    with contextlib.suppress(KeyError, TypeError):
        return _analysed[function]
    kinds = inspect.Parameter
    positional_only: list[str] = []
    named: list[str] = []
    required: list[str] = []
    var_positional = var_keyword = False
    all_positional = True
    for parameter in inspect.signature(method).parameters.values():
        if parameter.kind is kinds.VAR_KEYWORD:
            var_keyword = True
            continue
        if parameter.kind is kinds.VAR_POSITIONAL:
            var_positional = True
            continue
        (positional_only if parameter.kind is kinds.POSITIONAL_ONLY else named).append(parameter.name)
        all_positional = all_positional and parameter.kind is not kinds.KEYWORD_ONLY
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    found = Parameters(
        tuple(positional_only), tuple(named), tuple(required), var_positional, var_keyword, all_positional
    )
    with contextlib.suppress(TypeError):  # not weakly referenceable (a builtin, say): read each time
        _analysed[function] = found
    return found


def entry_for(callback: object, hook: HookSpec) -> Entry:
    """How the manager calls ``callback``'s ``hook``: directly when its parameters allow, else through an adapter."""
    method: HookFunction = getattr(callback, hook.name)
    found = parameters_of(method)
    names = found.positional_only + found.named
    # The hookspec's arguments, or the first of them (then ``*args`` takes the others, if any: a decorator's wrapper).
    if found.only_positional_or_keyword and names == hook.argnames[: len(names)]:
        arity = None if found.var_positional or len(names) == len(hook.argnames) else len(names)
        return Entry(callback, hook.name, method, found.var_keyword, arity)
    return Entry(callback, hook.name, by_name(method, found, hook), True)


def by_name(method: HookFunction, found: Parameters, hook: HookSpec) -> HookFunction:
    """Wrap ``method`` so that it receives, by name, only the arguments it takes (the general, slower call)."""
    spec = hook.argnames

    def call_by_name(*args: object, **context: object) -> object:
        available = dict(zip(spec, args))
        available.update(context)
        missing = [name for name in found.required if name not in available]
        if missing:
            given = ", ".join(repr(name) for name in available) or "nothing"
            raise MissingArgumentError(
                f"it requires {', '.join(repr(name) for name in missing)}, which the trainer did not pass "
                f"(it passed {given}); pass it as a keyword argument, or give the parameter a default",
                hook=hook.name,
            )
        positional = [available.pop(name) for name in found.positional_only if name in available]
        if found.var_keyword:
            return method(*positional, **available)
        return method(*positional, **{name: available[name] for name in found.named if name in available})

    return call_by_name


def taking_everything(entry: Entry) -> HookFunction:
    """``entry``'s function as one that takes every hookspec argument and the context, as a wrapper receives them.

    Only what the function takes reaches it: the first ``entry.arity`` arguments, the context if ``entry.context``.
    """
    call, count = entry.call, entry.arity
    if entry.context and count is None:
        return call
    if entry.context:
        return lambda *args, **kwargs: call(*args[:count], **kwargs)
    return lambda *args, **kwargs: call(*args[:count])
