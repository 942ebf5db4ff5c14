"""How one hook reaches its callbacks: signature analysis at registration, compiled dispatchers at call time.

Nothing here is public. The manager asks :func:`plan` which callbacks override a hook and how each one must be called,
once per change of its callback list, and :func:`compile_dispatcher` turns that plan into a plain function with the
hook's own signature. A call then costs one function call plus, per overriding callback, one ``try`` and one call of a
bound method: close to a hand-written loop, and far from ``pm.hook.<name>(...)``, which rebuilds its argument list
on every call.

Each callback's hook is called the way pluggy calls hook implementations: with the arguments it names, taken by name
from the hookspec's arguments and the trainer's context keywords. The decision is made once, at registration:

* a method whose leading parameters are the hookspec's arguments in order is called with them positionally, plus the
  context keywords when it accepts ``**kwargs``;
* any other method (fewer arguments, another order, keyword-only context arguments) goes through an adapter that
  picks its arguments by name, and reports an argument it requires that the trainer did not pass.
"""

from __future__ import annotations

import contextlib
import inspect
import linecache
import weakref
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .exceptions import TrainingError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .hookspecs import HookSpec

__all__: list[str] = []

HookFunction = Callable[..., object]
"""A callable that receives a hook's arguments."""

Failure = Callable[["Call", str, BaseException, "Mapping[str, object]"], TrainingError]
"""Builds the error for a callback's exception: (call, hook name, exception, arguments) -> error to raise."""


class Call(NamedTuple):
    """How one callback is called for one hook.

    ``positional`` takes the hookspec's arguments positionally; ``keyword`` takes them positionally followed by the
    context keywords.
    """

    callback: object
    positional: HookFunction
    keyword: HookFunction


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


class MissingArgumentError(TrainingError):
    """A callback requires an argument that the trainer did not pass."""


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


def _subset_adapters(method: HookFunction, shape: Shape, hook: HookSpec) -> tuple[HookFunction, HookFunction]:
    """Adapters for a method that names only hookspec arguments: generated code that passes just those."""
    passed = [*shape.positional_only, *(f"{name}={name}" for name in shape.named)]
    arguments = ", ".join(passed)
    keyword_arguments = ", ".join([*passed, "**kwargs"]) if shape.var_keyword else arguments
    params = "".join(f"{name}, " for name in hook.argnames)
    source = (
        "def make(method):\n"
        f"    def positional({params}):\n"
        f"        return method({arguments})\n"
        f"    def keyword({params}**kwargs):\n"
        f"        return method({keyword_arguments})\n"
        "    return positional, keyword\n"
    )
    adapters: tuple[HookFunction, HookFunction]
    adapters = _generate(source, f"<sara adapter {hook.name}>")(method)  # type: ignore[assignment]
    return adapters


def call_by_name(callback: object, hook: HookSpec) -> Call:
    """Call ``callback`` for ``hook`` by name only: the path for calls that lack some hookspec argument."""
    method: HookFunction = getattr(callback, hook.name)
    adapter = by_name(method, shape_of(method), hook)
    return Call(callback, adapter, adapter)


def call_for(callback: object, hook: HookSpec) -> Call:
    """Decide, once, how ``callback`` is called for ``hook``."""
    method: HookFunction = getattr(callback, hook.name)
    shape = shape_of(method)
    spec = hook.argnames
    if not all(name in spec for name in shape.required):
        # It requires something only the context can give: pick by name, and say so when it is missing.
        adapter = by_name(method, shape, hook)
        return Call(callback, adapter, adapter)
    if shape.leading[: len(spec)] == spec:
        if shape.var_keyword:
            return Call(callback, method, method)
        if len(shape.positional_only) + len(shape.named) > len(spec):
            # Optional parameters beyond the hookspec's may be filled from the context, by name.
            return Call(callback, method, by_name(method, shape, hook))
    if all(name in spec for name in shape.named + shape.positional_only):
        return Call(callback, *_subset_adapters(method, shape, hook))
    adapter = by_name(method, shape, hook)
    return Call(callback, adapter, adapter)


def compile_dispatcher(
    hook: HookSpec, calls: tuple[Call, ...], fail: Failure, position: dict[str, object]
) -> HookFunction:
    """A function with ``hook``'s signature that calls every entry of ``calls``, in order, unrolled.

    The source is generated once per hook and number of callbacks; each manager binds its own ``calls``.
    For a cleanup hook (``hook.cleanup``) the result of ``fail`` is not raised: ``fail`` reports it.
    ``position`` receives the current ``epoch`` from hooks that have one, for the error messages of later hooks.
    """
    names = hook.argnames
    args = "".join(f"{name}, " for name in names)
    arguments = "".join(f"{name!r}: {name}, " for name in names)
    act = "" if hook.cleanup else "raise "  # a cleanup hook's ``fail`` reports the error and the others still run
    lines = ["def make(calls, fail, position):"]
    lines += [f"    _, p{i}, k{i} = calls[{i}]" for i in range(len(calls))]
    lines.append(f"    def {hook.name}({args}**kwargs):")
    if "epoch" in names:
        lines.append('        position["epoch"] = epoch')
    if calls:
        for variant, call_args, extra in (("k", f"{args}**kwargs", "**kwargs"), ("p", args.rstrip(", "), "")):
            lines.append("        if kwargs:" if variant == "k" else "        else:")
            for i in range(len(calls)):
                lines += [
                    "            try:",
                    f"                {variant}{i}({call_args})",
                    "            except Exception as exc:",
                    f"                {act}fail(calls[{i}], {hook.name!r}, exc, {{{arguments}{extra}}})",
                ]
    else:
        lines.append("        return None")
    lines.append(f"    return {hook.name}")
    dispatcher = _generate("\n".join(lines) + "\n", f"<sara dispatcher {hook.name}>")(calls, fail, position)
    dispatcher.__qualname__ = f"CallbackManager.{hook.name}"
    dispatcher.__doc__ = hook.doc
    return dispatcher
