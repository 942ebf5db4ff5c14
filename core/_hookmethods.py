"""The manager's hook methods, one per hookspec, written from :data:`~altametris.sara.core.hookspecs.HOOKS`.

Nothing here is public. This is the one place where source is generated, the way :mod:`dataclasses` writes
``__init__``: so that each method has its hook's real parameters (a trainer may pass ``batch=`` by name,
``inspect.signature`` shows them) and its loop calls each function with those arguments directly, which costs what
a hand-written loop costs (``benchmarks/bench_dispatch.py`` compares them). The methods are set on
:class:`~altametris.sara.core.base_callback.CallbackManager` itself, so a subclass overrides them and calls
``super()`` as it would any method. For ``on_batch_end`` the source is::

    def on_batch_end(self, batch, metrics, **kwargs):
        calls = self._calls.on_batch_end          # a HookCalls: the functions to call, in order
        if calls.mixed:                           # some function takes only the first arguments
            if calls.arity == 1 and not (kwargs and calls.context):
                ...                               # all of them only ``batch``: call(batch) for each
            elif calls.arity == 0 and not (kwargs and calls.context):
                ...                               # all of them nothing: call() for each
            else:                                 # per function
                for call, arity, context in calls.mixed:
                    try:
                        if arity == 2:
                            ...                   # call(batch, metrics, **kwargs) or call(batch, metrics)
                        elif arity == 1:
                            ...                   # call(batch, **kwargs) or call(batch)
                        else:
                            ...                   # call(**kwargs) or call()
                    except Exception as raised:
                        self._failed(calls, call, raised, {"batch": batch, "metrics": metrics, **kwargs})
        elif kwargs and calls.context:            # context keywords, and some function takes them
            for call, context in calls.pairs:
                try:
                    if context:
                        call(batch, metrics, **kwargs)
                    else:
                        call(batch, metrics)
                except Exception as raised:
                    self._failed(calls, call, raised, {"batch": batch, "metrics": metrics, **kwargs})
        elif calls.functions:                     # the usual case: every function takes every argument
            for call in calls.functions:
                try:
                    call(batch, metrics)
                except Exception as raised:
                    self._failed(calls, call, raised, {"batch": batch, "metrics": metrics, **kwargs})

The methods are written when the first manager is made, or when one is first read from the class
(:class:`LazyHookMethod` stands for each until then): importing the package compiles none of them.

Hooks that receive ``epoch`` first keep it (``self._epoch = epoch``), for the errors of later hooks; the hook that
starts a run (``on_checkpoint_load``, ``on_train_start``) first calls ``self._start_run(<its name>)``.
"""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .hookspecs import HookSpec

__all__: list[str] = []


_LOCALS = frozenset({"self", "kwargs", "calls", "call", "context", "arity", "raised"})
"""The names the methods' source uses itself: no hookspec argument may take one."""


def _source(hook: HookSpec) -> str:
    name, names = hook.name, hook.argnames
    clash = _LOCALS.intersection(names)
    if clash:  # a hookspec's argument would be shadowed by the loop's own names
        raise TypeError(f"hookspec {name}: argument(s) {sorted(clash)} clash with the manager's loop: rename them")

    def call(count: int, context: bool) -> str:
        passed = [*names[:count], "**kwargs"] if context else list(names[:count])
        return f"call({', '.join(passed)})"

    everything = "{" + "".join(f"{argument!r}: {argument}, " for argument in names) + "**kwargs}"
    failed = [
        "            except Exception as raised:",
        f"                self._failed(calls, call, raised, {everything})",
    ]
    lines = [f"def {name}(self, {''.join(f'{argument}, ' for argument in names)}**kwargs):"]
    if hook.starts("run"):
        lines.append(f"    self._start_run({name!r})")
    if "epoch" in names:
        lines.append("    self._epoch = epoch")
    lines.append(f"    calls = self._calls.{name}")
    if names:  # a hook without arguments has no function that takes fewer
        lines.append("    if calls.mixed:  # some function takes only the first arguments")
        for count in range(len(names) - 1, -1, -1):  # all of them the same first ones: one call for all
            lines += [
                f"        {'if' if count == len(names) - 1 else 'elif'} calls.arity == {count} "
                "and not (kwargs and calls.context):",
                "            for call in calls.functions:",
                "                try:",
                f"                    {call(count, False)}",
                *("    " + line for line in failed),
            ]
        lines += [
            "        else:",
            "            for call, arity, context in calls.mixed:",
            "                try:",
        ]
    for count in range(len(names), -1, -1) if names else ():
        keyword = "if" if count == len(names) else "elif" if count else "else"
        lines += [
            f"                    {keyword}{f' arity == {count}' if count else ''}:",
            "                        if context:",
            f"                            {call(count, True)}",
            "                        else:",
            f"                            {call(count, False)}",
        ]
    if names:
        lines += ["    " + line for line in failed]
    lines += [
        f"    {'elif' if names else 'if'} kwargs and calls.context:",
        "        for call, context in calls.pairs:",
        "            try:",
        "                if context:",
        f"                    {call(len(names), True)}",
        "                else:",
        f"                    {call(len(names), False)}",
        *failed,
        "    elif calls.functions:",
        "        for call in calls.functions:",
        "            try:",
        f"                {call(len(names), False)}",
        *failed,
    ]
    return "\n".join(lines) + "\n"


def hook_method(hook: HookSpec, owner: type) -> Callable[..., None]:
    """The method of class ``owner`` (the manager) for ``hook``."""
    source = _source(hook)
    filename = f"<sara {owner.__qualname__}.{hook.name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)  # for tracebacks
    namespace: dict[str, object] = {"__name__": owner.__module__}
    exec(compile(source, filename, "exec"), namespace)
    method: Callable[..., None] = namespace[hook.name]  # type: ignore[assignment]
    method.__qualname__ = f"{owner.__qualname__}.{hook.name}"
    method.__doc__ = f"Call ``{hook.name}`` on every callback that overrides it, in order.\n\n{hook.doc}"
    return method


class LazyHookMethod:
    """The class attribute that stands for a hook's method until the methods are written.

    Reading one (``CallbackManager.on_batch_end``, ``super().on_batch_end``, ``inspect.signature``) writes them all
    with :func:`write_hook_methods`, as does the first manager made: importing the package compiles none of them,
    and a manager's hooks are plain methods of its class from its start.
    """

    def __init__(self, hook: HookSpec, owner: type, hooks: Iterable[HookSpec]) -> None:
        self.hook, self.owner, self.hooks = hook, owner, tuple(hooks)
        self.__doc__ = f"Call ``{hook.name}`` on every callback that overrides it, in order."

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        write_hook_methods(self.owner, self.hooks)
        return vars(self.owner)[self.hook.name].__get__(instance, owner)


def write_hook_methods(owner: type, hooks: Iterable[HookSpec]) -> None:
    """Set the method of each of ``hooks`` on ``owner`` in place of its :class:`LazyHookMethod`, once.

    Later calls find them written; two threads writing them at once write the same functions.
    """
    if owner in _WRITTEN:
        return
    for hook in hooks:
        setattr(owner, hook.name, hook_method(hook, owner))
    _WRITTEN.add(owner)


_WRITTEN: set[type] = set()
"""The classes whose hook methods are written."""
