"""How one hook reaches its callbacks: signature analysis at registration, compiled dispatchers at call time.

Nothing here is public. Once per change of its callback list, the manager asks :func:`call_for` how each callback that
overrides a hook must be called, and :func:`compile_dispatcher` turns those calls into a plain function with the
hook's own signature. A call then costs one function call plus, per overriding callback, one ``try`` and one call of a
bound method: close to a hand-written loop, and far from ``pm.hook.<name>(...)``, which rebuilds its argument list
on every call.

Each callback's hook is called the way pluggy calls hook implementations: with the arguments it names, taken by name
from the hookspec's arguments and the trainer's context keywords. The decision is made once, at registration, and
written into the dispatcher's source:

* a method whose leading parameters are the hookspec's arguments in order is called with them positionally, plus the
  context keywords when it accepts ``**kwargs``;
* a method that names only some of the hookspec's arguments, in any order, is called with just those, by name;
* any other method (one that takes context arguments by name) goes through an adapter that picks its arguments by
  name, and reports an argument it requires that the trainer did not pass.
"""

from __future__ import annotations

import contextlib
import inspect
import linecache
import weakref
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .exceptions import MissingArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .exceptions import TrainingError
    from .hookspecs import HookSpec

__all__: list[str] = []

HookFunction = Callable[..., object]
"""A callable that receives a hook's arguments."""

Failure = Callable[["Call", str, BaseException, "Mapping[str, object]"], "TrainingError"]
"""Builds the error for a callback's exception: (call, hook name, exception, arguments) -> error to raise."""


class Call(NamedTuple):
    """How one callback is called for one hook, as the generated dispatcher writes it.

    Without context keywords the dispatcher calls ``positional(<positional_args>)``; with them,
    ``keyword(<keyword_args>)``. The argument lists are source text over the hookspec's argument names and
    ``kwargs`` (for instance ``"batch, metrics, **kwargs"`` or ``"metrics=metrics"``).
    """

    callback: object
    positional: HookFunction
    keyword: HookFunction
    positional_args: str
    keyword_args: str


class Shape(NamedTuple):
    """The parameters of one hook method, as far as dispatch cares (``self`` excluded)."""

    positional_only: tuple[str, ...]
    named: tuple[str, ...]
    required: tuple[str, ...]
    leading: tuple[str, ...]
    var_keyword: bool


_shapes: weakref.WeakKeyDictionary[Any, Shape] = weakref.WeakKeyDictionary()


def shape_of(method: HookFunction) -> Shape:
    """Analyse ``method``'s parameters, once per underlying function."""
    function = getattr(method, "__func__", method)
    try:
        return _shapes[function]
    except (KeyError, TypeError):
        pass
    positional_only: list[str] = []
    named: list[str] = []
    required: list[str] = []
    leading: list[str] = []
    var_keyword = False
    leading_open = True
    for parameter in inspect.signature(method).parameters.values():
        kind = parameter.kind
        if kind is parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        if kind is parameter.VAR_POSITIONAL:
            leading_open = False
            continue
        if kind is parameter.POSITIONAL_ONLY:
            positional_only.append(parameter.name)
        else:
            named.append(parameter.name)
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        if leading_open and kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            leading.append(parameter.name)
        else:
            leading_open = False
    shape = Shape(tuple(positional_only), tuple(named), tuple(required), tuple(leading), var_keyword)
    with contextlib.suppress(TypeError):  # not weakly referenceable (a builtin, say): analysed each time
        _shapes[function] = shape
    return shape


_code: dict[str, Any] = {}


def _generate(source: str, filename: str) -> Callable[..., HookFunction]:
    """The ``make`` factory that ``source`` defines, compiled once per distinct source text."""
    code = _code.get(source)
    if code is None:
        # A distinct file name per source, known to linecache, so that tracebacks show the generated lines.
        filename = f"{filename[:-1]} #{len(_code)}>"
        code = _code[source] = compile(source, filename, "exec")
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    factory: Callable[..., HookFunction] = namespace["make"]
    return factory


def by_name(method: HookFunction, shape: Shape, hook: HookSpec) -> HookFunction:
    """Wrap ``method`` so that it receives, by name, only the arguments it can take (the general, slower path)."""
    spec = hook.argnames

    def call_by_name(*args: object, **context: object) -> object:
        available = dict(zip(spec, args))
        available.update(context)
        missing = [name for name in shape.required if name not in available]
        if missing:
            given = ", ".join(repr(name) for name in available) or "nothing"
            raise MissingArgumentError(
                f"it requires {', '.join(repr(name) for name in missing)}, which the trainer did not pass "
                f"(it passed {given}); pass it as a keyword argument, or give the parameter a default",
                hook=hook.name,
            )
        positional = [available.pop(name) for name in shape.positional_only if name in available]
        if shape.var_keyword:
            return method(*positional, **available)
        return method(*positional, **{name: available[name] for name in shape.named if name in available})

    return call_by_name


def call_by_name(callback: object, hook: HookSpec) -> Call:
    """Call ``callback`` for ``hook`` by name only: the path for calls that lack some hookspec argument."""
    method: HookFunction = getattr(callback, hook.name)
    adapter = by_name(method, shape_of(method), hook)
    spec = ", ".join(hook.argnames)
    return Call(callback, adapter, adapter, spec, ", ".join([*hook.argnames, "**kwargs"]))


def call_for(callback: object, hook: HookSpec) -> Call:
    """Decide, once, how ``callback`` is called for ``hook``: which function, with which argument list."""
    method: HookFunction = getattr(callback, hook.name)
    shape = shape_of(method)
    spec = hook.argnames
    in_order = ", ".join(spec)
    with_context = ", ".join([*spec, "**kwargs"])
    takes = shape.positional_only + shape.named
    if all(name in spec for name in shape.required):
        if shape.leading[: len(spec)] == spec and (shape.var_keyword or len(takes) == len(spec)):
            # The usual case: the hookspec's arguments in order, and the context only if it takes ``**kwargs``.
            return Call(callback, method, method, in_order, with_context if shape.var_keyword else in_order)
        if all(name in spec for name in takes):
            # It names some of the hookspec's arguments (any order): pass just those, by name.
            chosen = [*shape.positional_only, *(f"{name}={name}" for name in shape.named)]
            return Call(
                callback,
                method,
                method,
                ", ".join(chosen),
                ", ".join([*chosen, "**kwargs"]) if shape.var_keyword else ", ".join(chosen),
            )
        if shape.leading[: len(spec)] == spec:
            # Optional parameters beyond the hookspec's may be filled from the context, by name.
            return Call(callback, method, by_name(method, shape, hook), in_order, with_context)
    # It requires something only the context can give: pick by name, and say so when it is missing.
    adapter = by_name(method, shape, hook)
    return Call(callback, adapter, adapter, in_order, with_context)


def compile_dispatcher(
    hook: HookSpec,
    calls: tuple[Call, ...],
    fail: Failure,
    position: dict[str, object],
    *,
    tolerate: Failure | None = None,
    tolerant: frozenset[int] = frozenset(),
) -> HookFunction:
    """A function with ``hook``'s signature that calls every entry of ``calls``, in order, unrolled.

    The generated code is what one would write by hand for these callbacks: one ``try`` and one direct call per
    callback, each with its own argument list. It is compiled once per distinct source; each manager binds its own
    ``calls``. A failure raises what ``fail`` returns, except for the entries whose index is in ``tolerant`` (the
    callbacks whose error policy is not ``"raise"``): their failures go to ``tolerate``, and the call goes on with
    the next entry; only their ``except`` branch differs, so the others cost exactly what they cost without
    policies. For a cleanup hook (``hook.cleanup``) the result of ``fail`` is never raised: ``fail`` reports it.
    ``position`` receives the current ``epoch`` from ``on_epoch_start``, for the error messages of later hooks.
    """
    names = hook.argnames
    arguments = "".join(f"{name!r}: {name}, " for name in names)
    act = "" if hook.cleanup else "raise "  # a cleanup hook's ``fail`` reports the error and the others still run
    lines = ["def make(calls, fail, position, tolerate):"]
    lines += [f"    _, p{i}, k{i}, _, _ = calls[{i}]" for i in range(len(calls))]
    lines.append(f"    def {hook.name}({''.join(f'{name}, ' for name in names)}**kwargs):")
    if hook.name == "on_epoch_start":  # the epoch that later hooks' error messages name (on_epoch_end has its own)
        lines.append('        position["epoch"] = epoch')
    context_matters = any(call.keyword is not call.positional or call[4] != call[3] for call in calls)
    branches = (("k", 4, "**kwargs", "        if kwargs:"), ("p", 3, "", "        else:"))
    for variant, field, extra, header in branches if context_matters else branches[1:]:
        indent = "            " if context_matters else "        "
        if context_matters:
            lines.append(header)
        for i, call in enumerate(calls):
            handler = "tolerate(" if i in tolerant else f"{act}fail("
            lines += [
                f"{indent}try:",
                f"{indent}    {variant}{i}({call[field]})",
                f"{indent}except Exception as exc:",
                f"{indent}    {handler}calls[{i}], {hook.name!r}, exc, {{{arguments}{extra}}})",
            ]
    if not calls:
        lines.append("        return None")
    lines.append(f"    return {hook.name}")
    make = _generate("\n".join(lines) + "\n", f"<sara dispatcher {hook.name}>")
    dispatcher = make(calls, fail, position, tolerate)
    dispatcher.__qualname__ = f"CallbackManager.{hook.name}"
    dispatcher.__doc__ = hook.doc
    return dispatcher
