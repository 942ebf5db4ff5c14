"""Dispatch cost of ``on_batch_end`` and ``on_epoch_end`` against a hand-written loop, a naive manager and pluggy."""

from __future__ import annotations

from typing import Any

import pluggy
from altametris.sara.core import hookspecs
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError

from ._harness import Row, interleaved


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


def _pluggy(count: int) -> Any:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for _ in range(count):
        pm.register(PluggyPlugin())
    return pm.hook


def _loops(methods: list[Any]) -> dict[str, Any]:
    def loop(first: Any, metrics: Any) -> None:
        for method in methods:
            method(first, metrics)

    def loop_context(first: Any, metrics: Any, **kwargs: Any) -> None:
        for method in methods:
            method(first, metrics, **kwargs)

    def loop_fewer(first: Any, metrics: Any) -> None:
        for method in methods:
            method(first)

    return {"loop": loop, "loop_context": loop_context, "loop_fewer": loop_fewer}


def empty(first: Any, metrics: Any) -> None:
    pass


def run(quick: bool = False) -> list[Row]:
    # Sized so that ``tox -e bench`` stays under five minutes on a 2-core machine; interleaved rounds keep the
    # ratios steady even when the absolute times wobble.
    number = 10_000 if quick else 30_000
    rounds = 5 if quick else 9
    rows: list[Row] = []
    for hook, first in (("on_batch_end", "batch"), ("on_epoch_end", "epoch")):
        for count in (0, 1, 5, 20):
            for kind in ("overriding, **kwargs", "overriding, fewer args", "not overriding"):
                if count == 0 and kind != "not overriding":
                    continue
                cls = {"overriding, **kwargs": Full, "overriding, fewer args": Fewer, "not overriding": Silent}[kind]
                callbacks = [cls() for _ in range(count)]
                manager = CallbackManager(callbacks)
                overriding = kind != "not overriding"
                methods = [getattr(callback, hook) for callback in callbacks] if overriding else []
                names = {
                    "manager": manager,
                    "naive": NaiveManager(callbacks),
                    "hook": _pluggy(count if overriding else 0),
                    "met": {"loss": 0.5},
                    "model": object(),
                    "empty": empty,
                    **_loops(methods),
                }
                calls = {
                    "positional": (f"manager.{hook}(1, met)", "loop(1, met)"),
                    "keyword": (f"manager.{hook}({first}=1, metrics=met)", "loop(1, met)"),
                    "context": (f"manager.{hook}(1, met, model=model)", "loop_context(1, met, model=model)"),
                }
                for call, (statement, loop_call) in calls.items():
                    loop_statement = "loop_fewer(1, met)" if kind == "overriding, fewer args" else loop_call
                    contenders = {"sara": statement, "pluggy pm.hook": f"hook.{hook}({first}=1, metrics=met)"}
                    if overriding:
                        contenders["hand-written loop"] = loop_statement
                        if kind == "overriding, **kwargs":
                            naive_args = "1, met, model=model" if call == "context" else "1, met"
                            contenders["naive getattr manager"] = f"naive.{hook}({naive_args})"
                    else:
                        contenders["one empty function call"] = "empty(1, met)"
                    timings = interleaved(contenders, number=number, rounds=rounds, globals_=names)
                    case = f"{hook}, {count} callbacks, {kind}, {call} call"
                    _sara_min, _sara_median = timings["sara"]
                    for contender, (low, median) in timings.items():
                        rows.append(Row("dispatch", case, contender, low * 1e6, median * 1e6))
                    baseline = "hand-written loop" if overriding else "one empty function call"
                    rows.append(_ratio(case, "sara", timings, baseline, count, kind, call))
                    rows.append(_ratio(case, "sara", timings, "pluggy pm.hook", count, kind, call))
    return rows


def _ratio(  # noqa: PLR0917 - a private helper fed from one loop
    case: str, contender: str, timings: dict[str, tuple[float, float]], baseline: str, count: int, kind: str, call: str
) -> Row:
    ratio = timings[contender][0] / timings[baseline][0]
    target, met = "", None
    if baseline == "pluggy pm.hook":
        target, met = "< 1", ratio < 1
    elif baseline == "hand-written loop" and count == 5 and kind == "overriding, **kwargs" and call != "context":
        target, met = "<= 1.3", ratio <= 1.3
    elif baseline == "one empty function call" and call == "positional":
        target, met = "<= 2", ratio <= 2
    return Row(
        "dispatch (ratios)",
        case,
        f"sara / {baseline}",
        timings[contender][0] * 1e6,
        timings[contender][1] * 1e6,
        baseline=baseline,
        ratio=ratio,
        target=target,
        met=met,
    )
