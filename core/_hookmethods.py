"""The manager's hook methods, one per hookspec, written from :data:`~altametris.sara.core.hookspecs.HOOKS`.

Nothing here is public. This is the one place where source is generated, the way :mod:`dataclasses` writes
``__init__``: so that each method has its hook's real parameters (a trainer may pass ``batch=`` by name,
``inspect.signature`` shows them) and its loop calls each function with those arguments directly, which costs what
a hand-written loop costs (``benchmarks/bench_dispatch.py`` compares them). The methods are set on
:class:`~altametris.sara.core.base_callback.CallbackManager` itself, so a subclass overrides them and calls
``super()`` as it would any method. For ``on_batch_end`` the source is::

    def on_batch_end(self, batch, metrics, **kwargs):
        self._epoch = ...                          # hooks that receive ``epoch`` only: named in later errors
        calls = self._calls["on_batch_end"]
        if kwargs and calls.context:              # context keywords, and some function takes them
            for call, context in calls.pairs:
                try:
                    if context:
                        call(batch, metrics, **kwargs)
                    else:
                        call(batch, metrics)
                except Exception as raised:
                    self._failed(calls, call, raised, {"batch": batch, "metrics": metrics, **kwargs})
        else:
            for call in calls.functions:
                try:
                    call(batch, metrics)
                except Exception as raised:
                    self._failed(calls, call, raised, {"batch": batch, "metrics": metrics, **kwargs})

The hook that starts a run (``on_train_start``) first calls ``self._start_run()``.
"""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .hookspecs import HookSpec

__all__: list[str] = []


_LOCALS = frozenset({"self", "kwargs", "calls", "call", "context", "raised"})
"""The names the methods' source uses itself: no hookspec argument may take one."""


def _source(hook: HookSpec) -> str:
    name, names = hook.name, hook.argnames
    arguments = ", ".join(names)
    with_context = f"{arguments}, **kwargs" if names else "**kwargs"
    everything = "{" + "".join(f"{argument!r}: {argument}, " for argument in names) + "**kwargs}"
    clash = _LOCALS.intersection(names)
    if clash:  # a hookspec's argument would be shadowed by the loop's own names
        raise TypeError(f"hookspec {name}: argument(s) {sorted(clash)} clash with the manager's loop: rename them")
    failed = f"self._failed(calls, call, raised, {everything})"
    lines = [f"def {name}(self, {''.join(f'{argument}, ' for argument in names)}**kwargs):"]
    if hook.scope == "run" and hook.boundary == "start":
        lines.append("    self._start_run()")
    if "epoch" in names:
        lines.append("    self._epoch = epoch")
    lines += [
        f"    calls = self._calls[{name!r}]",
        "    if kwargs and calls.context:",
        "        for call, context in calls.pairs:",
        "            try:",
        "                if context:",
        f"                    call({with_context})",
        "                else:",
        f"                    call({arguments})",
        "            except Exception as raised:",
        f"                {failed}",
        "    else:",
        "        for call in calls.functions:",
        "            try:",
        f"                call({arguments})",
        "            except Exception as raised:",
        f"                {failed}",
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
