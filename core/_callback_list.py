"""The manager's ``callbacks`` list: an ordinary list that tells its owner when it changes.

Code written against the seed API changes ``manager.callbacks`` directly (``append``, ``remove``, slicing ...).
Every mutating method of :class:`list` is wrapped so that such a change reaches the manager, which rebuilds the
calls of the hooks it touches before the change returns; reading the list costs nothing extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__: list[str] = []

T = TypeVar("T")

_MUTATORS = (
    "__delitem__",
    "__iadd__",
    "__imul__",
    "__setitem__",
    "append",
    "clear",
    "extend",
    "insert",
    "pop",
    "remove",
    "reverse",
    "sort",
)


class CallbackList(list[T]):
    """A list that calls ``on_change()`` after every change of its content."""

    __slots__ = ("on_change",)

    def __init__(self, items: Iterable[T], on_change: Callable[[], None]) -> None:
        super().__init__(items)
        self.on_change = on_change

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (list, (list(self),))


def _notifying(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def mutator(self: CallbackList[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.on_change()

    mutator.__name__ = name
    mutator.__qualname__ = f"CallbackList.{name}"
    mutator.__doc__ = method.__doc__
    return mutator


for _name in _MUTATORS:
    setattr(CallbackList, _name, _notifying(_name))
del _name
