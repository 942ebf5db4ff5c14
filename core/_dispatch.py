"""How one hook reaches its callbacks: a plan per callback, decided once, and one loop per hook.

Nothing here is public. When a callback is registered, the manager asks :func:`plan_for` how it is called for each
hook it overrides: which function, with which of the hookspec's arguments, passed by position or by name, with or
without the trainer's context keywords (a :class:`Kind`). When its list changes, the manager gives the plans of the
active callbacks to :func:`build_dispatcher`, which returns a plain function with the hook's own signature: a loop
over the plans' functions with one ``try`` per call. A hook call then costs what a hand-written loop over bound
methods costs; nothing is compiled when callbacks change.

The loops themselves are generated, once per process, from :data:`~altametris.sara.core.hookspecs.HOOKS`: one per
hook for callbacks that are all called the same way (the usual case) and one that picks each call's kind, so that
the hook's parameter names are real parameters (a trainer may pass them by name). Their number is bounded by the
hooks and kinds, whatever the callbacks.

Each callback's hook is called the way pluggy calls hook implementations: with the arguments it names, taken by name
from the hookspec's arguments and the trainer's context keywords:

* a method whose leading parameters are hookspec arguments in the hookspec's order is called with them by position,
  plus the context keywords when it accepts ``**kwargs``; a ``*args`` after them (or alone, as in a decorator's
  wrapper) receives the remaining hookspec arguments, by position;
* a method that names hookspec arguments in another order is called with them by name;
* any other method (one that takes context arguments by name) goes through an adapter that picks its arguments by
  name, and reports an argument it requires that the trainer did not pass.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import linecache
import time
import weakref
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .exceptions import MissingArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .hookspecs import HookSpec

__all__: list[str] = []

HookFunction = Callable[..., object]
"""A callable that receives a hook's arguments."""

Handler = Callable[[HookFunction, BaseException, "Mapping[str, object]"], object]
"""What a dispatcher calls when a call raises: (the function that raised, the exception, the hook's arguments)."""


class Kind(NamedTuple):
    """One way of calling a hook function: which hookspec arguments, how, and whether with the context keywords."""

    names: tuple[str, ...]
    keyword: bool
    context: bool

    def arguments(self) -> str:
        """The argument list as source text, such as ``"batch, metrics, **kwargs"`` or ``"metrics=metrics"``."""
        passed = [f"{name}={name}" if self.keyword else name for name in self.names]
        return ", ".join([*passed, "**kwargs"] if self.context else passed)


class Plan(NamedTuple):
    """How one callback is called for one hook: the function, and the index of its :class:`Kind` in :func:`kinds`."""

    call: HookFunction
    kind: int


@functools.cache  # one entry per hook: bounded by HOOKS
def kinds(hook: HookSpec) -> tuple[Kind, ...]:
    """Every way of calling ``hook``'s functions; the first is the usual one (all arguments, then the context)."""
    spec = hook.argnames
    subsets = [names for size in range(len(spec), -1, -1) for names in itertools.combinations(spec, size)]
    found = [
        Kind(names, keyword, context)
        for names in subsets
        for keyword in ((False, True) if names else (False,))
        for context in (True, False)
    ]
    return tuple(found)


class Shape(NamedTuple):
    """The parameters of one hook method, as far as dispatch cares (``self`` excluded)."""

    positional_only: tuple[str, ...]
    named: tuple[str, ...]
    required: tuple[str, ...]
    leading: tuple[str, ...]
    var_keyword: bool
    var_positional: bool = False


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
    var_keyword = var_positional = False
    leading_open = True
    for parameter in inspect.signature(method).parameters.values():
        kind = parameter.kind
        if kind is parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        if kind is parameter.VAR_POSITIONAL:
            leading_open, var_positional = False, True
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
    shape = Shape(tuple(positional_only), tuple(named), tuple(required), tuple(leading), var_keyword, var_positional)
    with contextlib.suppress(TypeError):  # not weakly referenceable (a builtin, say): analysed each time
        _shapes[function] = shape
    return shape


def _loop(
    table: tuple[Kind, ...],
    variant: str,
    timed: bool,
    handler: str,
    timing: list[str],
    *,
    context: bool,
    indent: str,
) -> list[str]:
    """The lines of a dispatcher's loop over its entries, the calls with or without the context keywords."""

    def call(kind: Kind) -> str:
        return f"call({(kind if context else kind._replace(context=False)).arguments()})"

    lines = [f"        for call{', kind' if variant == 'mixed' else ''}{', record' if timed else ''} in entries:"]
    lines.append("            try:")
    if variant == "mixed":
        for index, kind in enumerate(table):
            lines += [
                f"                {'if' if index == 0 else 'elif'} kind == {index}:",
                f"                    {call(kind)}",
            ]
    else:
        lines.append(f"                {call(table[int(variant)])}")
    lines += [*handler.split("\n"), *(timing if timed else [])]
    return [indent + line for line in lines]


@functools.cache  # bounded: hooks x (kinds + 2) x 2 x 2
def _generate(hook: HookSpec, variant: str, clocked: bool = False, timed: bool = False) -> Callable[..., HookFunction]:
    """The ``make(entries, handle, position, clock)`` factory of ``hook``'s dispatcher for one variant, compiled once.

    ``variant`` is ``"empty"`` (no callback), ``"mixed"`` (entries are ``(function, kind index)`` pairs), or the
    index of the :class:`Kind` that every entry (a function) is called with. ``clocked`` (a manager with triggers
    only) adds the :class:`Clock`'s work: ``on_epoch_start`` first asks it for the epoch's dispatcher, and
    ``on_batch_end`` counts the batch. ``timed`` (a manager that profiles) pairs each entry with its record,
    ``[total, max, ...]``, adds each call's time to it (one clock read per call), and counts its own calls in
    ``calls``, a one-item list: the calls of each entry, without a count per entry.
    """
    name, argnames, table = hook.name, hook.argnames, kinds(hook)
    arguments = "".join(f"{argument!r}: {argument}, " for argument in argnames)
    handler = f"            except Exception as exc:\n                handle(call, exc, {{{arguments}**kwargs}})"
    timing = [
        "            now = perf_counter()",
        "            elapsed = now - start",
        "            record[0] += elapsed",
        "            if elapsed > record[1]:",
        "                record[1] = elapsed",
        "            start = now",
    ]
    lines = [
        "def make(entries, handle, position, clock, perf_counter, calls):",
        f"    def {name}({''.join(f'{argument}, ' for argument in argnames)}**kwargs):",
    ]
    if name == "on_epoch_start":  # the epoch that later hooks' error messages name
        lines.append('        position["epoch"] = epoch')
        if clocked:  # the triggers decide who runs in this epoch: another dispatcher, when that changed
            lines += [
                "        switched = clock.epoch_starts(epoch)",
                "        if switched is not None:",
                "            return switched(epoch, **kwargs)",
            ]
    if variant == "empty":
        lines.append("        pass")
    else:
        if timed:
            lines += ["        calls[0] += 1", "        start = perf_counter()"]
        mixed = variant == "mixed"
        kinds_used = table if mixed else (table[int(variant)],)
        if any(kind.context for kind in kinds_used):
            # Without context keywords, a plain call: ``call(batch, metrics)`` costs what a hand-written loop's does,
            # where ``call(batch, metrics, **kwargs)`` would build the call from a tuple and an empty dict.
            lines.append("        if kwargs:")
            lines += _loop(table, variant, timed, handler, timing, context=True, indent="    ")
            lines.append("        else:")
            lines += _loop(table, variant, timed, handler, timing, context=False, indent="    ")
        else:
            lines += _loop(table, variant, timed, handler, timing, context=True, indent="")
    if clocked and name == "on_batch_end":  # one more batch: the triggers' count, and their next change
        lines += [
            "        clock.batches += 1",
            "        if clock.batches >= clock.due:",
            "            clock.batch_ends()",
        ]
    lines.append(f"    return {name}")
    source = "\n".join(lines) + "\n"
    filename = f"<sara dispatcher {name} {variant}{' clocked' if clocked else ''}{' timed' if timed else ''}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)  # for tracebacks
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)
    factory: Callable[..., HookFunction] = namespace["make"]
    return factory


TRIGGER_ATTRIBUTE = "_sara_trigger"
"""The instance attribute that holds a callback's :class:`~altametris.sara.core.triggers.Trigger`."""


class Clock:
    """What a clocked dispatcher reads and calls (the manager's triggers): the batch count, and the next change.

    This base is the clock of a manager without triggers: it gates nothing, and no dispatcher reports to it.
    """

    triggers: Mapping[int, object] = MappingProxyType({})
    """The triggered callbacks by id: none here."""
    cache: dict[Any, HookFunction]
    """Dispatchers built for a set of skipped callbacks, kept for the next time the triggers select that set."""

    batches: int = 0
    """Batches ended in the training, over all epochs (the global count of ``every_n_batches``)."""
    due: int = 1 << 62
    """The count at which the batch hooks' callbacks change next (a triggered callback starts or stops running)."""

    def epoch_starts(self, epoch: int) -> HookFunction | None:
        """An epoch starts: the dispatcher of ``on_epoch_start`` to call instead of this one, when it changed."""
        return None

    def batch_ends(self) -> None:
        """``batches`` reached ``due``: bring the batch hooks' dispatchers up to date."""

    def __init__(self) -> None:
        self.cache = {}

    def follow(self, active: Sequence[Any]) -> bool:
        """Take the triggers of ``active``; whether the dispatchers must start or stop reporting to the clock."""
        return False

    def skipped(self, hook: str) -> frozenset[int] | None:
        """The callbacks the triggers leave out of ``hook`` now; ``None`` for a hook no trigger gates."""
        return None

    def state(self) -> dict[str, object]:
        """The counts a resumed training needs."""
        return {}

    def load(self, state: Mapping[str, object]) -> None:
        """Restore what :meth:`state` returned."""


def build_dispatcher(  # noqa: PLR0917 - the manager's table passes them all, in this order
    hook: HookSpec,
    plans: tuple[Plan, ...],
    handle: Handler,
    position: dict[str, object],
    clock: Clock | None = None,
    timing: tuple[tuple[list[Any], ...], list[int]] | None = None,
) -> HookFunction:
    """A function with ``hook``'s signature that calls every plan's function, in order.

    A call's exception goes to ``handle(function, exception, arguments)``, which raises the error the trainer sees,
    or reports it and returns, in which case the loop goes on with the next function (error policies, cleanup
    hooks). ``position`` receives the current ``epoch`` from ``on_epoch_start``, for later error messages. The
    functions must be distinct objects, so that ``handle`` can tell which callback raised (see :func:`distinct`).
    A ``clock`` (a manager with triggers) is told when an epoch starts and counts the batches. ``timing`` (a manager
    that profiles) is one ``[total, max, ...]`` record per plan, which receives each call's time, and a one-item list
    that counts the dispatcher's calls.
    """
    clocked = clock is not None and hook.name in ("on_epoch_start", "on_batch_end")
    records, calls = timing if timing is not None else (None, None)
    made = (handle, position, clock, time.perf_counter, calls)
    entries: tuple[Any, ...]
    if not plans:
        dispatcher = _generate(hook, "empty", clocked)((), *made)
    elif len({plan.kind for plan in plans}) == 1:
        functions = tuple(plan.call for plan in plans)
        entries = tuple(zip(functions, records)) if records is not None else functions
        dispatcher = _generate(hook, str(plans[0].kind), clocked, records is not None)(entries, *made)
    else:
        entries = tuple((*plan, record) for plan, record in zip(plans, records)) if records is not None else plans
        dispatcher = _generate(hook, "mixed", clocked, records is not None)(entries, *made)
    dispatcher.__qualname__ = f"CallbackManager.{hook.name}"
    dispatcher.__doc__ = hook.doc
    return dispatcher


def distinct(plans: list[Plan]) -> list[Plan]:
    """``plans`` with each function a distinct object, so that a failure names the right callback.

    A function that appears twice (one plugin's function given to two callbacks) is wrapped the second time.
    """
    seen = {id(plan.call) for plan in plans}
    if len(seen) == len(plans):  # the usual case: nothing to wrap
        return plans
    seen = set()
    unique = []
    for plan in plans:
        kept = plan._replace(call=functools.partial(plan.call)) if id(plan.call) in seen else plan
        seen.add(id(kept.call))
        unique.append(kept)
    return unique


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


def call_by_name(callback: object, hook: HookSpec) -> HookFunction:
    """``callback``'s function for ``hook``, called by name only: the path for calls that lack a hookspec argument."""
    method: HookFunction = getattr(callback, hook.name)
    return by_name(method, shape_of(method), hook)


def plan_for(callback: object, hook: HookSpec) -> Plan:
    """Decide, once, how ``callback`` is called for ``hook``: which function, with which arguments, how."""
    method: HookFunction = getattr(callback, hook.name)
    shape = shape_of(method)
    spec = hook.argnames
    takes = shape.positional_only + shape.named
    table = kinds(hook)
    if all(name in spec for name in (*shape.required, *takes)):
        if shape.var_positional and shape.leading == spec[: len(shape.leading)] and len(takes) == len(shape.leading):
            # ``*args`` after a prefix of the hookspec's arguments (or alone): it receives them all, by position.
            return Plan(method, table.index(Kind(spec, False, shape.var_keyword)))
        # It names some of the hookspec's arguments (any order): pass just those, by position when it can.
        chosen = tuple(name for name in spec if name in takes)
        if shape.leading == chosen:
            return Plan(method, table.index(Kind(chosen, False, shape.var_keyword)))
        if not shape.positional_only:
            return Plan(method, table.index(Kind(chosen, True, shape.var_keyword)))
    # It takes context arguments by name, or its parameters need picking: an adapter picks its arguments by name, and
    # says when one it requires is missing.
    return Plan(by_name(method, shape, hook), 0)
