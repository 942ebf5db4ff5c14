"""Checks made when a callback is registered, so that mistakes surface then, not in the middle of epoch 37.

Nothing here is public: :class:`~altametris.sara.core.base_callback.CallbackManager` calls :func:`check_callback`
for every callback it registers, and :func:`warn_misspelt_hooks` once per callback class.
"""

from __future__ import annotations

import weakref

from ._failures import check_policy, class_name, short_repr
from .exceptions import HookNameWarning, TrainingError
from .hookspecs import HOOKS

__all__: list[str] = []

_checked_classes: weakref.WeakSet[type] = weakref.WeakSet()


def check_callback(callback: object, where: str) -> None:
    """Refuse anything that is not a ``BaseCallback`` instance with a valid error policy.

    Raises:
        TrainingError: naming ``where`` and the offending object (or its policy).
    """
    from .base_callback import BaseCallback

    if not isinstance(callback, BaseCallback):
        hint = " (a class: instantiate it)" if isinstance(callback, type) and issubclass(callback, BaseCallback) else ""
        found = f"{class_name(callback)} {short_repr(callback)}"
        raise TrainingError(
            f"{where}: expected a BaseCallback instance, got {found}{hint}",
            callback=callback,
        )
    check_policy(callback, where)


def warn_misspelt_hooks(cls: type) -> None:
    """Warn, once per class, about ``on_*`` methods that are no hook: they would silently never run."""
    if cls in _checked_classes:
        return
    _checked_classes.add(cls)
    from .base_callback import BaseCallback

    strays = [
        name
        for klass in cls.__mro__
        if klass is not BaseCallback and issubclass(klass, BaseCallback)
        for name, value in vars(klass).items()
        if name.startswith("on_") and name not in HOOKS and callable(value)
    ]
    if not strays:
        return
    import difflib  # only when there is something to suggest: keeps the import of this module light
    import warnings

    for name in dict.fromkeys(strays):
        close = difflib.get_close_matches(name, HOOKS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the hooks are: {', '.join(HOOKS)}"
        warnings.warn(
            f"{cls.__qualname__.rpartition('<locals>.')[2]}.{name} is not a hook of SARA callbacks "
            f"and will never be called; {hint}",
            HookNameWarning,
            stacklevel=4,
        )
