"""The items of a config's ``callbacks`` list: a plugin name, or a table of the keys in :data:`ITEM_KEYS`.

Nothing here is public: :mod:`~altametris.sara.core.config` parses every item with :func:`parse_item`, which
reports each problem of an item (naming the file and the place) before anything is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .. import _state
from .._failures import ERROR_POLICIES, policy_problem
from ..exceptions import ConfigError
from ..messages import VALUE_LIMIT, did_you_mean, safe_repr
from ..triggers import Trigger
from ._files import config_error, type_word

if TYPE_CHECKING:
    from .._failures import ErrorPolicy
    from ..exceptions import SaraError

__all__: list[str] = []

ITEM_KEYS = ("name", "params", "enabled", "on_error", "state_key", "when", "before", "after")
"""The keys of a callback's table in a config."""


class Item(NamedTuple):
    where: str  # "callbacks[2]"
    name_where: str  # "callbacks[2].name", or "callbacks[2]" for a bare name
    name: str
    params: Mapping[str, object]
    enabled: bool
    on_error: ErrorPolicy | None = None
    state_key: str | None = None
    when: Trigger | None = None
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


def parse_item(value: object, where: str, shown: str | None, report: Callable[[SaraError], None]) -> Item | None:
    """The item at ``where``, or ``None`` after reporting its problems."""
    if isinstance(value, str):
        return Item(where, where, value, {}, enabled=True)
    if not isinstance(value, Mapping):
        report(
            config_error(
                shown, where, f"expected a plugin name or a table {{{', '.join(ITEM_KEYS)}}}, got {type_word(value)}"
            )
        )
        return None
    found = _unknown_keys(value, where, shown)
    name = value.get("name")
    if "name" not in value:
        found.append(config_error(shown, where, "missing 'name': every table needs the plugin's name"))
    elif not isinstance(name, str):
        found.append(
            config_error(
                shown, f"{where}.name", f"expected a string, got {type_word(name)} {safe_repr(name, VALUE_LIMIT)}"
            )
        )
    params = value.get("params", {})
    if not isinstance(params, Mapping):
        found.append(config_error(shown, f"{where}.params", f"expected a table, got {type_word(params)}"))
    else:
        found += [
            config_error(
                shown,
                f"{where}.params",
                f"parameter names are strings, got {type_word(key)} {safe_repr(key, VALUE_LIMIT)}",
            )
            for key in params
            if not isinstance(key, str)
        ]
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        found.append(
            config_error(
                shown,
                f"{where}.enabled",
                f"expected true or false, got {type_word(enabled)} {safe_repr(enabled, VALUE_LIMIT)}",
            )
        )
    on_error = value.get("on_error")
    policy_error = _check_policy(on_error, f"{where}.on_error", shown) if "on_error" in value else None
    if policy_error is not None:
        found.append(policy_error)
    state_key = value.get("state_key")
    key_problem = _state.key_problem(state_key) if "state_key" in value else None
    if key_problem is not None:
        found.append(
            config_error(shown, f"{where}.state_key", f"{key_problem}, got {safe_repr(state_key, VALUE_LIMIT)}")
        )
    trigger, trigger_error = _check_trigger(value["when"], where, shown) if "when" in value else (None, None)
    if trigger_error is not None:
        found.append(trigger_error)
    order = {
        key: _check_names(value[key], f"{where}.{key}", shown, found) for key in ("before", "after") if key in value
    }
    for problem in found:
        report(problem)
    if found:
        return None
    return Item(
        where,
        f"{where}.name",
        name,  # type: ignore[arg-type]  # a str: checked above
        params,
        enabled,
        on_error,
        state_key,
        trigger,
        order.get("before", ()),
        order.get("after", ()),
    )


def _check_names(value: object, key: str, shown: str | None, found: list[ConfigError]) -> tuple[str, ...]:
    """The plugin names of a ``before`` or ``after`` key, or ``()`` after adding its problems to ``found``."""
    if not isinstance(value, (list, tuple)):
        hint = f'; write ["{value}"]' if isinstance(value, str) and value.isidentifier() else ""
        found.append(config_error(shown, key, f"expected a list of plugin names, got {type_word(value)}{hint}"))
        return ()
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name:
            found.append(
                config_error(
                    shown, f"{key}[{index}]", f"expected a plugin name, got {type_word(name)} {safe_repr(name)}"
                )
            )
    return tuple(value)


def _unknown_keys(item: Mapping[Any, object], where: str, shown: str | None) -> list[ConfigError]:
    found = []
    for key in item:
        if key not in ITEM_KEYS:
            text = key if isinstance(key, str) else ""
            hint = did_you_mean(text, ITEM_KEYS) or _under_params(text, item)
            found.append(
                config_error(
                    shown,
                    where,
                    f"unknown key {safe_repr(key, VALUE_LIMIT)}; {hint}an item's keys are: {', '.join(ITEM_KEYS)}",
                )
            )
    return found


def _under_params(key: str, item: Mapping[Any, object]) -> str:
    """The hint for a key that looks like a parameter written on the item instead of under ``params``."""
    if not (key.isidentifier() and key.isascii() and len(key) <= VALUE_LIMIT):
        return ""  # no parameter name: nothing to point under params (and nothing huge or odd to repeat)
    name = item.get("name")
    shown = f"name = {safe_repr(name, VALUE_LIMIT)}, " if isinstance(name, str) else ""
    return (
        f"if it is a parameter of the plugin, write it under 'params': "
        f"{{ {shown}params = {{ {key} = ... }} }} (YAML: params: {{{key}: ...}}); "
    )


def _check_trigger(value: object, where: str, shown: str | None) -> tuple[Trigger | None, ConfigError | None]:
    """The item's trigger, or the error that names its key (``callbacks[2].when.every_n_batches: ...``)."""
    try:
        return Trigger.parse(value), None  # type: ignore[arg-type]
    except ConfigError as error:
        text = str(error)
        key = error.key or "when"
        return None, config_error(shown, f"{where}.{key}", text[len(key) + 2 :] if text.startswith(key) else text)


def _check_policy(value: object, key: str, shown: str | None) -> ConfigError | None:
    problem = policy_problem(value)
    if problem is None:
        return None
    hint = did_you_mean(value.lower() if isinstance(value, str) else "", ERROR_POLICIES)
    return config_error(shown, key, f"{problem}; {hint.rstrip()}" if hint else problem)
