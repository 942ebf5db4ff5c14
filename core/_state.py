"""The callbacks' state, saved with a checkpoint and restored on resume, filed under each callback's ``state_key``.

Nothing here is public: :meth:`~altametris.sara.core.base_callback.CallbackManager.state_dict` and
:meth:`~altametris.sara.core.base_callback.CallbackManager.load_state_dict` call these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._callback import BaseCallback, overrides
from .exceptions import StateError
from .messages import class_name, describe_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__: list[str] = []

_OVERRIDE = "_sara_state_key"  # an instance attribute: the state_key a config item (or set_key) gave


def configured_key(callback: object) -> str | None:
    """The state key that ``callback``'s config item set (:func:`set_key`), ``None`` when none did."""
    override = getattr(callback, "__dict__", {}).get(_OVERRIDE)
    return override if isinstance(override, str) else None


def key_of(callback: BaseCallback) -> str:
    """``callback``'s state key: the one its config item set, else its :attr:`~BaseCallback.state_key`."""
    override = configured_key(callback)
    return callback.state_key if override is None else override


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be a state key, or ``None``."""
    if not isinstance(key, str):
        return f"expected a string, got {type(key).__name__}"
    if not key.strip() or not key.isprintable() or len(key) > 200:
        return "expected a non-empty printable string of at most 200 characters"
    return None


def set_key(callback: BaseCallback, key: str) -> None:
    """File ``callback``'s state under ``key`` (checked by :func:`key_problem` first) instead of its own key."""
    callback.__dict__[_OVERRIDE] = key


def stateful(callbacks: Iterable[BaseCallback]) -> dict[str, BaseCallback]:
    """The callbacks that override ``state_dict``, by ``state_key``.

    Raises:
        StateError: when two of them share a ``state_key``.
    """
    by_key: dict[str, BaseCallback] = {}
    for callback in callbacks:
        if not overrides(type(callback), "state_dict"):
            continue
        key = key_of(callback)
        if key in by_key:
            raise StateError(
                f"two stateful callbacks share the state_key {key!r}: {by_key[key]!r} and {callback!r}; "
                f"give one of them another state_key so that their states do not overwrite each other (in a "
                f'config: state_key = "..." in its item)',
                key=key,
                callbacks=(by_key[key], callback),
            )
        by_key[key] = callback
    return by_key


def load(by_key: Mapping[str, BaseCallback], state_dict: Mapping[str, Mapping[str, Any]], *, strict: bool) -> None:
    """Give each callback of ``by_key`` its entry of ``state_dict``.

    Raises:
        StateError: for unclaimed entries (when ``strict``), or a callback that refuses its state.
    """
    unclaimed = sorted(set(state_dict) - set(by_key))
    if strict and unclaimed:
        raise StateError(
            f"the saved state has entries no registered callback claims: {unclaimed}; registered stateful "
            f"callbacks: {sorted(by_key) or 'none'}; register those callbacks, or load with strict=False",
            key=unclaimed[0],
        )
    for key, callback in by_key.items():
        if key not in state_dict:
            continue
        try:
            callback.load_state_dict(state_dict[key])
        except Exception as error:
            raise StateError(
                f"callback {class_name(callback)!r} could not load its state {key!r}: {describe_error(error)}",
                key=key,
                callbacks=(callback,),
            ) from error
