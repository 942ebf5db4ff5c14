"""Declared order: which callbacks run before which, and the one call order that follows.

Callbacks run in registration order (a config's order) unless something declares otherwise:

* a config item's ``before`` and ``after`` keys, lists of plugin names (a name stands for every item of that plugin);
* a plugin class's :attr:`~altametris.sara.core.base_callback.BaseCallback.run_before` and
  :attr:`~altametris.sara.core.base_callback.BaseCallback.run_after` attributes, plugin names as well;
* ``CallbackManager.add_callback(callback, before=[...], after=[...])``;
* the writers' rule: a callback that
  :attr:`~altametris.sara.core.base_callback.BaseCallback.saves_checkpoints` runs after every callback that does not,
  so that the state a checkpoint holds is the whole epoch's, unless a declared constraint puts one before it.

:func:`resolve` changes the registration order only as far as the constraints require (a stable topological sort:
each next callback is the earliest one whose predecessors have all run, where a callback that declares ``after`` is
placed just behind the last callback it names and one that declares ``before`` just ahead of the first) and refuses a
cycle with an
:class:`OrderError` that names the plugins in it. A callback's name is the plugin name its config item enabled, or
else the name its class is registered under (read from the installed distributions' metadata, nothing imported):

    >>> from altametris.sara.core.base_callback import BaseCallback
    >>> class Upload(BaseCallback):
    ...     run_after = ("checkpoint",)
    >>> from altametris.sara.plugins.checkpoint import Checkpoint
    >>> from altametris.sara.plugins.history import History
    >>> callbacks = [Upload(), Checkpoint(dirpath="ckpt"), History()]
    >>> [type(callback).__name__ for callback in resolve(callbacks)]
    ['History', 'Checkpoint', 'Upload']
    >>> for rule in rules(callbacks):
    ...     print(rule)
    Upload after checkpoint (run_after)
    checkpoint after the callbacks that save no checkpoint (saves_checkpoints)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ._callback import ORDER_ATTRIBUTE
from .exceptions import OrderError
from .messages import VALUE_LIMIT, did_you_mean, safe_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._callback import BaseCallback

__all__ = [
    "Placement",
    "declares_order",
    "name_of",
    "names_of",
    "place",
    "resolve",
    "rules",
    "unknown_name",
    "writers_last",
]


class Placement(NamedTuple):
    """What a config item or ``add_callback`` said about one callback's place.

    Attributes:
        name: the plugin name its config item enabled, or ``None``.
        before: plugin names it runs before.
        after: plugin names it runs after.
        origin: where they were said, for messages: ``"callbacks[2]"``, ``"add_callback()"``.
    """

    name: str | None = None
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    origin: str = "add_callback()"


def place(callback: BaseCallback, placement: Placement | None) -> None:
    """Give ``callback`` its :class:`Placement` (a config's, or ``add_callback``'s); ``None`` takes it away."""
    if placement is None:
        vars(callback).pop(ORDER_ATTRIBUTE, None)
    else:
        vars(callback)[ORDER_ATTRIBUTE] = placement


def placement_of(callback: BaseCallback) -> Placement | None:
    """The :class:`Placement` that :func:`place` gave ``callback``, if any."""
    found: Placement | None = getattr(callback, "__dict__", {}).get(ORDER_ATTRIBUTE)
    return found


def declares_order(callback: BaseCallback) -> bool:
    """Whether ``callback`` declares any constraint (``run_before``, ``run_after``, ``before``, ``after``)."""
    placement = placement_of(callback)
    return bool(callback.run_before or callback.run_after or (placement and (placement.before or placement.after)))


def name_of(callback: BaseCallback, targets: dict[str, str] | None = None) -> str | None:
    """The plugin name of ``callback``: its config item's, else the one its class is registered under."""
    placement = placement_of(callback)
    if placement is not None and placement.name is not None:
        return placement.name
    cls = type(callback)
    return (_targets() if targets is None else targets).get(f"{cls.__module__}:{cls.__qualname__}")


def names_of(callbacks: Iterable[BaseCallback]) -> list[str | None]:
    """:func:`name_of` each callback, the installed plugins read once for all of them."""
    targets = _targets()
    return [name_of(callback, targets) for callback in callbacks]


def _targets() -> dict[str, str]:
    """``"module:attribute"`` -> plugin name, for every installed plugin (metadata only; the first name wins)."""
    from .discovery import available_plugins  # discovery depends on the runtime, not the other way round

    found: dict[str, str] = {}
    for info in available_plugins():
        found.setdefault(info.target, info.name)
    return found


def _installed_names() -> set[str]:
    """The names of the installed plugins (metadata only), which a constraint may name."""
    from .discovery import available_plugins

    return {info.name for info in available_plugins()}


def unknown_name(name: str, known: set[str], elsewhere: str) -> str | None:
    """Why ``name`` cannot be a constraint's (no plugin of ``known`` has it), with a suggestion; ``None`` if it can."""
    if name in known:
        return None
    hint = did_you_mean(name, sorted(known))
    return f"{safe_repr(name, VALUE_LIMIT)} is no installed plugin and {elsewhere}; {hint}see sara-callbacks list"


class _Graph(NamedTuple):
    names: list[str]  # each callback's name in messages: its plugin name, else its class name
    after: list[set[int]]  # after[j]: the callbacks that must run before callback j
    rules: list[tuple[int, str]]  # (the callback it orders, the constraint in words)
    places: list[float]  # where each callback would like to be: its index, or by the ones it declares itself against


def _graph(callbacks: Sequence[BaseCallback]) -> _Graph:
    plugins = names_of(callbacks)
    names = [plugin or type(callback).__qualname__ for plugin, callback in zip(plugins, callbacks)]
    by_name: dict[str, list[int]] = {}
    for index, plugin in enumerate(plugins):
        if plugin is not None:
            by_name.setdefault(plugin, []).append(index)
    after: list[set[int]] = [set() for _ in callbacks]
    shown: list[tuple[int, str]] = []
    places: list[float] = list(range(len(callbacks)))
    for index, callback in enumerate(callbacks):
        placement = placement_of(callback) or Placement()
        for words, before, own, where in (
            ("before", True, callback.run_before, "run_before"),
            ("after", False, callback.run_after, "run_after"),
            ("before", True, placement.before, f"{placement.origin}.before"),
            ("after", False, placement.after, f"{placement.origin}.after"),
        ):
            for name in own:
                shown.append((index, f"{names[index]} {words} {name} ({where})"))
                for other in by_name.get(name, ()):
                    if plugins[other] == plugins[index]:
                        continue  # a plugin is not ordered against its own items: they keep their config order
                    if before:  # just ahead of the first of them
                        after[other].add(index)
                        places[index] = min(places[index], other - 0.5)
                    else:  # just behind the last of them
                        after[index].add(other)
                        places[index] = max(places[index], other + 0.5)
    writers = [index for index, callback in enumerate(callbacks) if callback.saves_checkpoints]
    if writers:
        # after the callbacks that save no checkpoint, except those a declared constraint puts after some writer
        # (an uploader after "checkpoint"): those run after the writers, never forced before one
        declared = _followers(after)
        later = set().union(*(_reachable(writer, declared) for writer in writers))
        others = [index for index, callback in enumerate(callbacks) if not callback.saves_checkpoints]
        for writer in writers:
            after[writer].update(index for index in others if index not in later)
            shown.append((writer, f"{names[writer]} after the callbacks that save no checkpoint (saves_checkpoints)"))
    return _Graph(names, after, shown, places)


def _followers(after: list[set[int]]) -> list[list[int]]:
    """``after`` read backwards: for each callback, those that must run after it."""
    followers: list[list[int]] = [[] for _ in after]
    for index, before in enumerate(after):
        for other in before:
            followers[other].append(index)
    return followers


def _reachable(start: int, followers: list[list[int]]) -> set[int]:
    """The callbacks that must run after ``start``, directly or through others."""
    later: set[int] = set()
    stack = [start]
    while stack:
        for index in followers[stack.pop()]:
            if index not in later:
                later.add(index)
                stack.append(index)
    return later


def writers_last(callbacks: Iterable[BaseCallback]) -> list[BaseCallback]:
    """``callbacks`` with those that save checkpoints moved after the others: the order when none declares one."""
    first: list[BaseCallback] = []
    last: list[BaseCallback] = []
    for callback in callbacks:
        (last if callback.saves_checkpoints else first).append(callback)
    return [*first, *last]


def resolve(callbacks: Sequence[BaseCallback]) -> list[BaseCallback]:
    """``callbacks`` in call order: their order changed only as far as the declared constraints require.

    Raises:
        OrderError: the constraints have a cycle (the message names the plugins in it).
    """
    if not any(map(declares_order, callbacks)):  # the common case, no names needed
        return writers_last(callbacks)
    import heapq  # only for a declared order

    graph = _graph(callbacks)
    waiting = [len(before) for before in graph.after]
    followers = _followers(graph.after)
    places = graph.places
    ready = [(places[index], index) for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, index = heapq.heappop(ready)
        order.append(index)
        for follower in followers[index]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, (places[follower], follower))
    if len(order) < len(callbacks):
        cycle = _cycle(set(range(len(callbacks))) - set(order), graph.after)
        shown = [graph.names[index] for index in cycle]
        raise OrderError(
            f"the declared order has a cycle: {', which runs after '.join(reversed(shown))}; "
            f"remove one of these constraints: {'; '.join(rule for index, rule in graph.rules if index in cycle)}",
            cycle=shown,
        )
    return [callbacks[index] for index in order]


def _cycle(left: set[int], after: list[set[int]]) -> list[int]:
    """One cycle among the callbacks ``left`` unsorted: each runs after the one before it, the first repeated last."""
    path = [min(left)]
    while True:
        step = min(other for other in after[path[-1]] if other in left)  # each left one waits for another left one
        if step in path:
            cycle = path[path.index(step) :]
            return [*reversed(cycle), cycle[-1]]
        path.append(step)


def rules(callbacks: Iterable[BaseCallback]) -> list[str]:
    """The constraints that order ``callbacks``, one line each (``"upload after checkpoint (callbacks[2].after)"``)."""
    return [rule for _, rule in _graph(list(callbacks)).rules]
