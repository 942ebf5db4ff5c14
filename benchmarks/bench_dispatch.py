"""Dispatch: ``on_batch_end`` and ``on_epoch_end`` through the manager, against a hand-written loop and pluggy.

Each case is one hook, a number of callbacks of one kind, and one way of calling (positional, keyword, with a context
keyword). Targets, in every case:

* callbacks that override the hook: the manager within 1.3x a hand-written loop over the same bound methods, below
  pluggy's ``pm.hook`` and below a naive ``getattr`` manager;
* no callback overriding it: the manager within 2x one call of an empty function taking the same arguments, and
  below pluggy.

Besides the contenders that the targets compare, each case times a few empty functions called each way (probes):
when a target is missed, the reason is computed from them, in the same rounds.
"""

from __future__ import annotations

from typing import Any

import pluggy
from altametris.sara.core import hookspecs
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError

from ._harness import Budget, Case, Measured, Samples, Target, timed

KWARGS, FEWER, SILENT = "overriding, `**kwargs`", "overriding, fewer args", "not overriding"
LOOP_TARGET, EMPTY_TARGET = 1.3, 2.0


class Full(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        pass


class Fewer(BaseCallback):
    def on_batch_end(self, batch):  # type: ignore[no-untyped-def, override]
        pass

    def on_epoch_end(self, epoch):  # type: ignore[no-untyped-def, override]
        pass


class Silent(BaseCallback):
    """Overrides no hook."""


class NaiveManager:
    """What one writes first: getattr per call, try/except around each callback."""

    def __init__(self, callbacks: list[BaseCallback]) -> None:
        self.callbacks = callbacks

    def _call(self, hook: str, *args: Any, **kwargs: Any) -> None:
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(*args, **kwargs)
            except Exception as error:
                raise TrainingError(f"{type(callback).__name__} failed in {hook}: {error}") from error

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._call("on_batch_end", batch, metrics, **kwargs)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self._call("on_epoch_end", epoch, metrics, **kwargs)


class PluggyPlugin:
    @hookspecs.hookimpl
    def on_batch_end(self, batch: int, metrics: dict[str, float]) -> None:
        pass

    @hookspecs.hookimpl
    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


class Holder:
    """Holds an empty function in its instance dict, over a method of the same name: how the manager keeps a hook."""

    def f(self, first: Any, metrics: Any, **kwargs: Any) -> None:
        pass


def empty(first: Any, metrics: Any) -> None:
    pass


def empty_kw(first: Any, metrics: Any, **kwargs: Any) -> None:
    pass


def _pluggy(count: int) -> Any:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for _ in range(count):
        pm.register(PluggyPlugin())
    return pm.hook


def _namespace(hook: str, callbacks: list[BaseCallback], overriding: bool) -> dict[str, Any]:
    methods = [getattr(callback, hook) for callback in callbacks] if overriding else []

    def loop(first: Any, metrics: Any) -> None:
        for method in methods:
            method(first, metrics)

    def loop_context(first: Any, metrics: Any, **kwargs: Any) -> None:
        for method in methods:
            method(first, metrics, **kwargs)

    def loop_fewer(first: Any, metrics: Any) -> None:
        for method in methods:
            method(first)

    holder = Holder()
    holder.f = empty_kw  # type: ignore[method-assign]
    return {
        "manager": CallbackManager(callbacks),
        "naive": NaiveManager(callbacks),
        "hook": _pluggy(len(callbacks) if overriding else 0),
        "met": {"loss": 0.5},
        "model": object(),
        "loop": loop,
        "loop_context": loop_context,
        "loop_fewer": loop_fewer,
        "empty": empty,
        "empty_kw": empty_kw,
        "holder": holder,
        "m0": methods[0] if methods else None,
    }


# The arguments of each way of calling, for the manager (whose first argument is named after the hook) and for the
# probes (whose first argument is named ``first``).
CALLS = {
    "positional": ("1, met", "1, met"),
    "keyword": ("{first}=1, metrics=met", "first=1, metrics=met"),
    "context": ("1, met, model=model", "1, met, model=model"),
}


def _statements(hook: str, first: str, kind: str, call: str) -> dict[str, str]:
    sara_args, probe_args = CALLS[call]
    statements = {
        "sara": f"manager.{hook}({sara_args.format(first=first)})",
        "pluggy pm.hook": f"hook.{hook}({first}=1, metrics=met)",
    }
    if kind == SILENT:
        statements["one empty function call"] = f"{'empty_kw' if call == 'context' else 'empty'}({probe_args})"
        if call != "context":
            statements["probe: an empty `**kwargs` function"] = f"empty_kw({probe_args})"
        statements["probe: the same, stored on an instance"] = f"holder.f({probe_args})"
        return statements
    if kind == FEWER:
        statements["hand-written loop"] = "loop_fewer(1, met)"
        statements["probe: one callback by keyword"] = f"m0({first}=1)"
        statements["probe: one callback positionally"] = "m0(1)"
    else:
        statements["hand-written loop"] = "loop_context(1, met, model=model)" if call == "context" else "loop(1, met)"
        naive_args = "1, met, model=model" if call == "context" else "1, met"
        statements["naive getattr manager"] = f"naive.{hook}({naive_args})"
    loop_like = "empty_kw(1, met, model=model)" if call == "context" and kind == KWARGS else "empty(1, met)"
    statements["probe: an empty function, called as the loop is"] = loop_like
    statements["probe: an empty `**kwargs` function on an instance, called as sara is"] = f"holder.f({probe_args})"
    return statements


def _explain_overriding(count: int, first: str, call: str) -> Any:
    def explain(measured: Measured, target: Target) -> str:
        if target.baseline != "hand-written loop":
            return ""
        sara, loop = measured.best("sara"), measured.best("hand-written loop")
        as_loop = measured.best("probe: an empty function, called as the loop is")
        as_sara = measured.best("probe: an empty `**kwargs` function on an instance, called as sara is")
        fixed = as_sara - as_loop
        rest = (sara - loop - fixed) * 1000 / count
        text = (
            f"sara takes {sara:.3f} us, the loop {loop:.3f} us; reaching a hook as the manager's attribute, with "
            f"`**kwargs`, costs {fixed * 1000:.0f} ns more than the loop's own call (an empty function called each "
            f"way: {as_sara:.3f} against {as_loop:.3f} us), "
            + (f"which leaves {rest:.0f} ns per callback" if rest > 0 else "which accounts for the whole difference")
        )
        if "probe: one callback by keyword" in measured.samples:
            keyword = measured.best("probe: one callback by keyword")
            positional = measured.best("probe: one callback positionally")
            text += (
                f"; a callback that names only some of the hook's arguments is called by keyword (`{first}={first}`), "
                f"and one such call costs {(keyword - positional) * 1000:.0f} ns more than a positional one "
                f"({keyword / positional:.2f}x)"
            )
            if call == "context":
                text += "; the loop drops the context keywords, the manager's hook receives them in `**kwargs`"
        return text

    return explain


def _explain_silent(call: str) -> Any:
    def explain(measured: Measured, target: Target) -> str:
        if target.baseline != "one empty function call":
            return ""
        parts = []
        base = "one empty function call"
        kwargs_function = "probe: an empty `**kwargs` function"
        if kwargs_function in measured.samples:
            parts.append(
                f"the hook must accept the trainer's context keywords, so it declares `**kwargs`: an empty function "
                f"that does costs {measured.ratio(kwargs_function, base):.2f}x one that does not, called the same way"
            )
        else:
            kwargs_function = base
        stored = "probe: the same, stored on an instance"
        parts.append(
            f"reached as an instance attribute, as the manager keeps its hooks, the `**kwargs` function costs "
            f"{measured.ratio(stored, kwargs_function):.2f}x a call of it as a global"
        )
        parts.append(f"sara costs {measured.ratio('sara', stored):.2f}x that stored function")
        return "; ".join(parts)

    return explain


def _case(hook: str, first: str, count: int, kind: str, call: str) -> Case:
    cls = {KWARGS: Full, FEWER: Fewer, SILENT: Silent}[kind]
    overriding = kind != SILENT
    statements = _statements(hook, first, kind, call)

    def measure(budget: Budget) -> Samples:
        namespace = _namespace(hook, [cls() for _ in range(count)], overriding)
        return timed(statements, namespace, budget)

    if overriding:
        targets = [Target("sara", "hand-written loop", LOOP_TARGET), Target("sara", "pluggy pm.hook", 1.0)]
        if kind == KWARGS:
            targets.append(Target("sara", "naive getattr manager", 1.0))
        explain = _explain_overriding(count, first, call)
    else:
        targets = [Target("sara", "one empty function call", EMPTY_TARGET), Target("sara", "pluggy pm.hook", 1.0)]
        explain = _explain_silent(call)
    name = f"{hook}, {count} callbacks, {kind}, {call} call"
    return Case("dispatch", name, measure, tuple(targets), explain)


def cases(budget: Budget) -> list[Case]:
    """Every hook x number of callbacks x kind x way of calling."""
    found = []
    for hook, first in (("on_batch_end", "batch"), ("on_epoch_end", "epoch")):
        for count in (0, 1, 5, 20):
            for kind in (KWARGS, FEWER, SILENT):
                if count == 0 and kind != SILENT:
                    continue
                for call in CALLS:
                    found.append(_case(hook, first, count, kind, call))
    return found
