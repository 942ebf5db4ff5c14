"""Callbacks from a config: plugin names in order, with parameters, from a mapping or a TOML, YAML or JSON file.

A config is a table whose ``callbacks`` key lists the callbacks, each a plugin name or a table::

    callbacks = [
        "progress_bar",
        { name = "early_stopping", params = { monitor = "val_loss", patience = 3 } },
        { name = "csv_logger", params = { path = "metrics.csv" }, enabled = false },
        { name = "mlflow_logger", on_error = "warn" },
    ]

The callbacks are built in list order; only the plugins named (and enabled) are imported. ``on_error`` sets the
callback's error policy (``"raise"``, the default, ``"warn"`` or ``"disable"``: see
:attr:`~altametris.sara.core.base_callback.BaseCallback.on_error`). ``state_key`` files a stateful callback's saved
state under that key (two ``early_stopping`` items on one monitor need one): two stateful callbacks with one key are
refused, naming both items. ``when`` says when the callback runs (``when = "100ba"``, ``when = { every_n_epochs = 2,
from_epoch = 4 }``: see :mod:`~altametris.sara.core.triggers`). A config is data: it names
registered plugins only, unless the caller passes ``allow_import_paths=True``, which also accepts ``"module:Class"``
(a ``BaseCallback`` subclass: a function named that way would be called with the params, so it is refused).
YAML is read with ``yaml.safe_load`` only. A top-level ``profile = true`` turns the callbacks' timings on
(:mod:`~altametris.sara.core.profiling`); other top-level keys are left to the trainer.

Every error names the file and the place of the bad item, e.g.
``train.toml: callbacks[2].params: expected a table, got list``.

Example:
    >>> from altametris.sara.core.config import check_config, load_callbacks
    >>> load_callbacks({"callbacks": []})
    []
    >>> load_callbacks({"callbacks": [{"name": "history", "params": {"size": 3}}]})
    Traceback (most recent call last):
    ...
    altametris.sara.core.exceptions.PluginParameterError: callbacks[0].params.size: plugin 'history' ...
    >>> report = check_config({"callbacks": ["histroy", {"name": 1}]})
    >>> [type(problem).__name__ for problem in report.problems]
    ['UnknownPluginError', 'ConfigError']
    >>> print(report.problems[0])
    callbacks[0]: unknown plugin 'histroy'; did you mean 'history'? installed plugins: ...
    >>> print(report.problems[1])
    callbacks[1].name: expected a string, got integer 1
    >>> load_callbacks({"callbacks": [{"name": "history", "on_error": "warn"}]})[0].on_error
    'warn'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .. import _state, discovery
from .._callback import BaseCallback, overrides
from .._failures import set_policy
from .._registration import validate_callback
from ..discovery import _signature
from ..exceptions import ConfigError, OrderError, PluginParameterError, PluginTypeError, SaraError
from ..messages import VALUE_LIMIT, close_matches, safe_repr
from ..order import Placement, place, resolve, unknown_name
from ..triggers import set_trigger
from ._files import SUPPORTED_EXTENSIONS, check_bounds, config_error, key_part, located, read_file, type_word
from ._items import ITEM_KEYS, Item, parse_item

if TYPE_CHECKING:
    from ..base_callback import ConfigSource
    from ..discovery import PluginInfo

__all__ = ["ITEM_KEYS", "SUPPORTED_EXTENSIONS", "ConfigReport", "check_config", "load_callbacks", "read_config"]


class ConfigReport(NamedTuple):
    """What :func:`check_config` found.

    Attributes:
        problems: every problem, each an error whose message starts with the file and the place.
        callbacks: the callbacks that could be built, in config order.
        names: the plugin names of the enabled items, in config order.
        disabled: the plugin names of the items with ``enabled = false``.
    """

    problems: tuple[SaraError, ...]
    callbacks: tuple[BaseCallback, ...]
    names: tuple[str, ...]
    disabled: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """``True`` when the config has no problem."""
        return not self.problems


def read_config(source: ConfigSource) -> dict[str, Any]:
    """Read a config: a mapping as it is, or a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file.

    Only the top-level shape is checked here (a table with a ``callbacks`` list); the items are checked by
    :func:`load_callbacks` and :func:`check_config`. Keys other than ``callbacks`` are the trainer's.

    Raises:
        ConfigError: the file is missing, unreadable, malformed, or has no ``callbacks`` list.

    Example:
        >>> read_config({"callbacks": ["history"], "epochs": 3})
        {'callbacks': ['history'], 'epochs': 3}
    """
    content, shown = _content(source)
    return dict(_top_level(content, shown))


def _content(source: object) -> tuple[object, str | None]:
    if isinstance(source, Mapping):
        return source, None
    if isinstance(source, (str, os.PathLike)) and not isinstance(source, bytes):
        return read_file(source)
    raise ConfigError(
        f"expected a mapping or the path (str or os.PathLike) of a config file, got {type(source).__qualname__}"
    )


def _top_level(content: object, shown: str | None) -> Mapping[str, Any]:
    check_bounds(content, shown)  # the whole document, before anything here walks, lists or prints it
    if content is None and shown is not None:
        raise config_error(shown, None, "the file is empty; expected a 'callbacks' list")
    if not isinstance(content, Mapping):
        raise config_error(
            shown, None, f"expected a table with a 'callbacks' list at the top, got {type_word(content)}"
        )
    if "callbacks" not in content:
        keys = [key for key in content if isinstance(key, str)]
        listed = ", ".join(safe_repr(key, VALUE_LIMIT) for key in keys[:10]) + (
            f", ... ({len(keys) - 10} more)" if len(keys) > 10 else ""
        )
        found = f"found keys: {listed}; " if keys else "the table is empty; "
        close = close_matches("callbacks", keys)
        rename = f"rename {close[0]!r} to 'callbacks'; " if close else ""
        raise config_error(shown, None, f"no 'callbacks' key; {found}{rename}expected callbacks = [...], a list")
    if not isinstance(content["callbacks"], list):
        raise config_error(
            shown,
            "callbacks",
            f"expected a list, got {type_word(content['callbacks'])}{_list_hint(content['callbacks'], shown)}",
        )
    return content


def _list_hint(value: object, shown: str | None) -> str:
    """How to write a list of callbacks, for a table written where the list belongs."""
    if not isinstance(value, Mapping):
        return ""
    if shown is not None and shown.lower().endswith(".toml"):
        return (
            "; in TOML, each callback is a [[callbacks]] table (double brackets: an item of the list), "
            "not [callbacks] (single brackets: one table)"
        )
    return "; write the callbacks as a list of items: callbacks = [{name = ..., params = {...}}, ...]"


_IMPORT_PATH_LIMIT = 300


def _is_import_path(name: str) -> bool:
    """Whether ``name`` is ``module.sub:Class.attr``: identifiers only, at most 300 characters."""
    module, colon, attribute = name.partition(":")
    parts = module.split(".") + attribute.split(".")
    return bool(colon) and len(name) <= _IMPORT_PATH_LIMIT and all(part.isidentifier() for part in parts)


def _locate(error: SaraError, shown: str | None, key: str) -> SaraError:
    """Prefix ``error``'s message with the file and the place in the config, and keep both as attributes."""
    try:
        text = str(error)
    except Exception:
        text = type(error).__qualname__
    error.args = (located(shown, key, text),)
    for attribute, value in (("path", shown), ("key", key)):
        if getattr(error, attribute, None) is None:
            setattr(error, attribute, value)
    return error


def _name_problem(name: str) -> str | None:
    """Why ``name`` can be neither a plugin name nor an import path, or ``None``."""
    why = discovery._check_name(name)
    return None if why is None or _is_import_path(name) else why


def _resolve(item: Item, shown: str | None, allow_import_paths: bool) -> PluginInfo:
    why = discovery._check_name(item.name)
    if why is not None:
        if _is_import_path(item.name):
            if allow_import_paths:
                return discovery._import_path_plugin(item.name)
            raise config_error(
                shown,
                item.name_where,
                f"{safe_repr(item.name, VALUE_LIMIT)} is an import path, and a config names registered plugins only; "
                "register the "
                f"class under the {discovery.GROUP!r} entry-point group of its distribution, or let this config "
                "import it with allow_import_paths=True (sara-callbacks check --allow-import-paths)",
            )
        raise config_error(shown, item.name_where, f"invalid plugin name {safe_repr(item.name, VALUE_LIMIT)}: {why}")
    return discovery.find_plugin(item.name)


def _check_import_path_target(factory: object, info: PluginInfo) -> None:
    """An import path (opted in) names a callback class: a function would be *called* with the config's params."""
    if not (isinstance(factory, type) and issubclass(factory, BaseCallback)):
        raise PluginTypeError(
            f"{info.describe()}: an import path must name a BaseCallback subclass, got "
            f"{type(factory).__qualname__} {safe_repr(factory, VALUE_LIMIT)}; functions and other callables are "
            "accepted only from "
            "plugins that a distribution registers, never called from a config",
            plugin=info.name,
            target=info.target,
            found=factory,
        )


def _process(source: ConfigSource, allow_import_paths: bool, *, strict: bool, origin: str | None) -> ConfigReport:
    found: list[SaraError] = []

    def report(error: SaraError) -> None:
        if strict:
            raise error
        found.append(error)

    try:
        content, shown = _content(source)
        shown = origin if shown is None else shown
        top = _top_level(content, shown)
        items = top["callbacks"]
    except ConfigError as error:
        report(error)
        return ConfigReport(tuple(found), (), (), ())
    profile = top.get("profile")
    if profile is not None and not isinstance(profile, bool):
        report(config_error(shown, "profile", f"expected true or false, got {type_word(profile)} {safe_repr(profile)}"))
    callbacks: list[BaseCallback] = []
    names: list[str] = []
    disabled: list[str] = []
    built: list[tuple[Item, BaseCallback]] = []
    for index, value in enumerate(items):
        item = parse_item(value, f"callbacks[{index}]", shown, report)
        if item is None:
            continue
        if not item.enabled:
            why = _name_problem(item.name)  # not imported, but named in reports: its name must be harmless too
            if why is None:
                disabled.append(item.name)
            else:
                report(
                    config_error(
                        shown, item.name_where, f"invalid plugin name {safe_repr(item.name, VALUE_LIMIT)}: {why}"
                    )
                )
            continue
        names.append(item.name)
        callback = _build(item, shown, allow_import_paths, report)
        if callback is not None:
            callbacks.append(callback)
            built.append((item, callback))
    for problem in _shared_state_keys(built, shown):
        report(problem)
    for problem in _order_problems(built, [*names, *disabled], shown):
        report(problem)
    return ConfigReport(tuple(found), tuple(callbacks), tuple(names), tuple(disabled))


def _build(  # noqa: PLR0911 - one early return per kind of problem, each reported at its place
    item: Item, shown: str | None, allow_import_paths: bool, report: Callable[[SaraError], None]
) -> BaseCallback | None:
    """The callback of an enabled item, or ``None`` after reporting its problems."""
    try:
        info = _resolve(item, shown, allow_import_paths)
        factory = info.load()
        if info.distribution is None:
            _check_import_path_target(factory, info)
    except ConfigError as error:
        report(error)
        return None
    except SaraError as error:
        report(_locate(error, shown, item.name_where))
        return None
    problems: list[PluginParameterError] = _signature.problems(factory, item.params, info)
    for problem in problems:
        report(_locate(problem, shown, _parameter_place(item, problem.parameter, f"{item.where}.params")))
    if problems:
        return None
    try:
        callback = _signature.construct(factory, item.params, info)
    except SaraError as error:
        report(_locate(error, shown, _parameter_place(item, getattr(error, "parameter", None), item.where)))
        return None
    if item.on_error is not None:
        try:
            set_policy(callback, item.on_error, info.describe(target=False))
        except SaraError as error:
            report(config_error(shown, f"{item.where}.on_error", str(error)))
            return None
    try:  # what the manager will check when it registers it: found here, at its item, by `check` too
        validate_callback(callback, info.describe(target=False))
    except SaraError as error:
        report(_locate(error, shown, item.where))
        return None
    if item.when is not None:
        set_trigger(callback, item.when)
    if hasattr(callback, "__dict__"):  # its name for the order's constraints (and theirs, if it has any)
        place(callback, Placement(item.name, item.before, item.after, item.where))
    return callback if _set_state_key(callback, item, shown, report) else None


def _set_state_key(callback: BaseCallback, item: Item, shown: str | None, report: Callable[[SaraError], None]) -> bool:
    """Give ``callback`` the ``state_key`` of its item, if any; ``False`` after reporting a problem."""
    if item.state_key is None:
        return True
    if not overrides(callback, "state_dict"):
        report(
            config_error(
                shown,
                f"{item.where}.state_key",
                f"plugin {item.name!r} keeps no state (it has no state_dict): remove state_key from this item",
            )
        )
        return False
    _state.set_key(callback, item.state_key)
    return True


def _shared_state_keys(built: list[tuple[Item, BaseCallback]], shown: str | None) -> list[ConfigError]:
    """One error per stateful callback whose state key an earlier one already has: their saved states would clash."""
    first: dict[str, Item] = {}
    found = []
    for item, callback in built:
        if not overrides(callback, "state_dict"):
            continue
        key = _state.key_of(callback)
        if key not in first:
            first[key] = item
            continue
        other = first[key]
        found.append(
            config_error(
                shown,
                item.where,
                f"{item.name!r} and {other.where} ({other.name!r}) share the state_key {safe_repr(key, VALUE_LIMIT)}: "
                f"the state saved for a resume would hold only one of them; give this item its own key, e.g. "
                f'state_key = "{item.name}-{item.where[10:-1]}"',
            )
        )
    return found


def _order_problems(built: list[tuple[Item, BaseCallback]], named: list[str], shown: str | None) -> list[ConfigError]:
    """The ``before``/``after`` names that name no plugin, and else a cycle of the declared order."""
    known = {info.name for info in discovery.available_plugins()} | set(named)
    found = [
        config_error(shown, f"{item.where}.{key}[{index}]", problem)
        for item, _ in built
        for key, names in (("before", item.before), ("after", item.after))
        for index, name in enumerate(names)
        if (problem := unknown_name(name, known, "no item of this config")) is not None
    ]
    if found:
        return found
    try:
        resolve([callback for _, callback in built])
    except OrderError as error:
        return [OrderError(located(shown, "callbacks", str(error)), cycle=error.cycle, path=shown, key="callbacks")]
    return []


def _parameter_place(item: Item, parameter: object, otherwise: str) -> str:
    """``callbacks[2].params.patience`` for a parameter the item gives, else ``otherwise``."""
    given = isinstance(parameter, str) and parameter in item.params
    return f"{item.where}.params{key_part(parameter)}" if given else otherwise


def load_callbacks(
    source: ConfigSource, *, allow_import_paths: bool = False, origin: str | None = None
) -> list[BaseCallback]:
    """Build the callbacks a config enables, in its order, with their parameters checked before each call.

    Args:
        source: a mapping, or the path (``str`` or ``os.PathLike``) of a ``.toml``, ``.yaml``/``.yml`` or ``.json``
            file, whose ``callbacks`` key lists plugin names or ``{name, params, enabled, on_error}`` tables.
        allow_import_paths: also accept ``"module:Class"`` names that no distribution registers.
        origin: for a mapping that :func:`read_config` read from a file, that file's name, which messages then start
            with as they do for the file itself.

    Returns:
        The callbacks, in config order, ``enabled = false`` items left out.

    Raises:
        ConfigError: the file is missing, unreadable or malformed, or an item is (the message names the file and the
            item, e.g. ``train.toml: callbacks[2].params: expected a table, got list``).
        PluginError: a plugin is unknown, registered twice, broken, or refuses its parameters; the message starts
            with the file and the item as well.
    """
    return list(_process(source, allow_import_paths, strict=True, origin=origin).callbacks)


def check_config(source: ConfigSource, *, allow_import_paths: bool = False) -> ConfigReport:
    """Validate a config as :func:`load_callbacks` would, but report every problem instead of the first one.

    Every enabled callback is built (building has no side effects, by contract) and kept in the report.

    Args:
        source: as for :func:`load_callbacks`.
        allow_import_paths: as for :func:`load_callbacks`.

    Returns:
        A :class:`ConfigReport`; ``report.ok`` is ``True`` when :func:`load_callbacks` would succeed.
    """
    return _process(source, allow_import_paths, strict=False, origin=None)
