"""Whether a callback fits the contract: the conformance check of the testing kit.

Nothing here is public: :mod:`altametris.sara.core.testing` re-exports :func:`check_callback` and
:func:`conformance_problems`. The parameters are read with the code that ``sara-callbacks show`` and the config
checks use (the private modules ``discovery._describe`` and ``discovery._signature``), so that what passes here is
what they see.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pathlib
import warnings
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Callable

from .. import _state
from .._callback import BaseCallback, overrides
from .._registration import hook_problems
from ..discovery import PluginInfo, _check_factory, _describe, _signature, find_plugin
from ..exceptions import ConformanceError, SaraError
from ..messages import VALUE_LIMIT, describe_error, safe_repr

if TYPE_CHECKING:
    import inspect

    from ..discovery import PluginFactory

__all__: list[str] = []


def _one_line(error: BaseException) -> str:
    text = describe_error(error) if not isinstance(error, SaraError) else str(error)
    return " ".join(text.split())


def _name(value: object) -> str:
    owner = value if isinstance(value, type) or callable(value) else type(value)
    return str(getattr(owner, "__qualname__", type(owner).__qualname__)).rpartition("<locals>.")[2]


def _info(factory: object, plugin_name: str | None) -> PluginInfo:
    module = getattr(factory, "__module__", "?")
    return PluginInfo(plugin_name or _name(factory), f"{module}:{getattr(factory, '__qualname__', '?')}")


# -- what is checked -----------------------------------------------------------------------------------------------


def _subject(callback: object, problems: list[str]) -> tuple[PluginFactory | None, BaseCallback | None]:
    """The factory (class or function) to check and the instance when one was given; ``None`` when unusable."""
    if isinstance(callback, BaseCallback):
        return type(callback), callback
    try:
        factory = _check_factory(callback, _info(callback, None))
    except SaraError as error:
        problems.append(_one_line(error))
        return None, None
    return factory, None


def _check_registration(plugin_name: str, factory: PluginFactory, problems: list[str]) -> None:
    try:
        info = find_plugin(plugin_name)
        loaded = info.load()
    except SaraError as error:
        problems.append(f"registration: {_one_line(error)}")
        return
    if loaded is not factory:
        problems.append(
            f"registration: plugin {plugin_name!r} ({info.requirement}) loads {info.target!r}, which is not "
            f"{_name(factory)}: point the entry point of the 'sara.callbacks' group at it"
        )


# -- constructor parameters, as `sara-callbacks show` and the config checks read them --------------------------------


def _check_parameters(factory: PluginFactory, problems: list[str]) -> None:
    label = _name(factory)
    if isinstance(factory, type) and not (factory.__doc__ or "").strip():
        problems.append(
            f"{label} has no docstring: `sara-callbacks show` would print BaseCallback's; say what it does, "
            "and describe its parameters under Args:"
        )
    if _signature.parameters(factory) is None:
        problems.append(
            f"{label}'s constructor has no signature that inspect can read: `sara-callbacks show` lists no "
            "parameter and configs' params are not checked before the call"
        )
        return
    try:
        shown = _describe.parameters(factory)
        hooks = _describe.hooks(factory)
    except Exception as error:
        problems.append(f"`sara-callbacks show` cannot describe {label}: {_one_line(error)}")
        return
    if hooks == []:
        problems.append(f"{label} overrides no hook (`sara-callbacks show` says 'hooks: none'): it would never run")
    parameters = _signature.parameters(factory) or {}
    annotations = _signature.annotations_of(factory)
    for item in shown:
        name = str(item["name"])
        parameter = parameters.get(name)
        if parameter is not None and parameter.kind is parameter.POSITIONAL_ONLY and item["required"]:
            problems.append(f"{label}: parameter {name!r} is positional-only and required, which a config cannot give")
        annotation = annotations.get(name, _signature.UNRESOLVED)
        if item["annotation"] is None:
            problems.append(
                f"{label}: parameter {name!r} has no annotation: configs' values for it are not checked, and "
                "`sara-callbacks show` shows no type; annotate it"
            )
        elif annotation is _signature.UNRESOLVED:
            problems.append(
                f"{label}: the annotation {item['annotation']!r} of parameter {name!r} cannot be resolved at run "
                "time (a name imported under TYPE_CHECKING?): configs' values for it are not checked; import it "
                "at run time"
            )
        elif parameter is not None and not item["required"] and not _signature.conforms(parameter.default, annotation):
            problems.append(
                f"{label}: the default {parameter.default!r} of parameter {name!r} does not fit its annotation "
                f"{item['annotation']}: a config could not give that value back; fix the annotation (Optional?)"
            )
    problems += _choice_problems(factory, label, parameters)


def _choice_problems(factory: object, label: str, parameters: Mapping[str, inspect.Parameter]) -> list[str]:
    """What is wrong with the choices that ``factory`` declares (``parameter_choices``), which configs must meet."""
    declared = getattr(factory, "parameter_choices", None)
    if declared is None or (isinstance(declared, Mapping) and not declared):
        return []
    if not isinstance(declared, Mapping):
        return [f"{label}.parameter_choices is {type(declared).__qualname__}; expected a mapping of names to values"]
    problems = []
    allowed = _signature.choices(factory)  # type: ignore[arg-type]
    for name, values in declared.items():
        if name not in parameters:
            problems.append(
                f"{label}.parameter_choices names {name!r}, which is no parameter of its constructor; "
                f"its parameters are: {', '.join(parameters) or 'none'}"
            )
        elif isinstance(values, str) or not isinstance(values, (Sequence, Set)) or not values:
            problems.append(
                f"{label}.parameter_choices[{name!r}] is {safe_repr(values)}; expected a non-empty tuple of values"
            )
        else:
            default = parameters[name].default
            if default is not parameters[name].empty and not _signature.in_choices(default, allowed[name]):
                problems.append(
                    f"{label}: the default {safe_repr(default)} of parameter {name!r} is not one of its "
                    "parameter_choices: a config could not give that value back"
                )
    return problems


# -- state -----------------------------------------------------------------------------------------------------------


def _json_issues(value: object, path: str) -> list[str]:
    """Where ``value`` is not plain JSON data (dict keys that are no strings, objects JSON cannot write)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return []
    if isinstance(value, dict):
        issues = [
            f"at {path}: the key {key!r} is {type(key).__qualname__}, which JSON turns into a string"
            for key in value
            if not isinstance(key, str)
        ]
        for key, item in value.items():
            issues += _json_issues(item, f"{path}[{key!r}]")
        return issues
    if isinstance(value, (list, tuple)):
        return [issue for index, item in enumerate(value) for issue in _json_issues(item, f"{path}[{index}]")]
    return [f"at {path}: {type(value).__qualname__} {safe_repr(value, VALUE_LIMIT)} is not JSON data"]


def _plain(value: object) -> object:
    """``value`` with tuples as lists, as a JSON round trip leaves them."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _difference(before: object, after: object, path: str) -> str | None:
    """Where ``after`` differs from ``before`` (NaN equals NaN), or ``None``."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [*before, *(key for key in after if key not in before)]
        for key in keys:
            if key not in after or key not in before:
                return f"at {path}: the key {key!r} is {'gone' if key not in after else 'new'}"
        pairs = [(before[key], after[key], f"{path}[{key!r}]") for key in keys]
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = [(one, other, f"{path}[{index}]") for index, (one, other) in enumerate(zip(before, after))]
    else:
        nans = isinstance(before, float) and isinstance(after, float) and math.isnan(before) and math.isnan(after)
        same = nans or (type(before) is type(after) and before == after)
        return None if same else f"at {path}: {safe_repr(before, VALUE_LIMIT)} became {safe_repr(after, VALUE_LIMIT)}"
    return next(filter(None, (_difference(one, other, where) for one, other, where in pairs)), None)


def _check_state(instance: BaseCallback, rebuild: Callable[[], BaseCallback] | None, problems: list[str]) -> None:
    cls = type(instance)
    label = _name(cls)
    saves = overrides(cls, "state_dict")
    loads = overrides(cls, "load_state_dict")
    if saves and not loads:
        problems.append(f"{label} overrides state_dict but not load_state_dict: its state is saved, never restored")
    elif loads and not saves:
        problems.append(
            f"{label} overrides load_state_dict but not state_dict: the manager saves only callbacks that override "
            "state_dict, so its load_state_dict never runs"
        )
    try:
        key: object = instance.state_key
    except Exception as error:
        problems.append(f"{label}.state_key raised {_one_line(error)}")
    else:
        if not isinstance(key, str) or not key:
            problems.append(f"{label}.state_key is {safe_repr(key, VALUE_LIMIT)}; expected a non-empty string")
    if not saves:
        return
    try:
        state: object = instance.state_dict()
    except Exception as error:
        problems.append(f"{label}.state_dict() raised {_one_line(error)}")
        return
    if not isinstance(state, dict):
        problems.append(f"{label}.state_dict() returned {type(state).__qualname__}; expected a dict")
        return
    issues = _json_issues(state, "state")
    if issues:
        problems += [f"{label}.state_dict() does not survive JSON: {issue}" for issue in issues]
        return
    loaded = json.loads(json.dumps(state))
    target = _fresh(instance, rebuild)
    try:
        target.load_state_dict(loaded)
        after = target.state_dict()
    except Exception as error:
        problems.append(f"{label}.load_state_dict() of its own state, read back from JSON, raised {_one_line(error)}")
        return
    difference = _difference(_plain(state), _plain(after), "state")
    if difference:
        problems.append(
            f"{label}: state_dict() -> JSON -> load_state_dict() -> state_dict() gives another state, {difference}"
        )


def _fresh(instance: BaseCallback, rebuild: Callable[[], BaseCallback] | None) -> BaseCallback:
    """A new callback to load the state into, as a resumed training would; a copy of ``instance`` at worst."""
    if rebuild is not None:
        try:
            return rebuild()
        except Exception:  # built once already: the copy below will do
            pass
    try:
        return copy.deepcopy(instance)
    except Exception:
        return instance


def _warn_state_key_ignores(
    factory: PluginFactory, instance: BaseCallback, arguments: Mapping[str, object], info: PluginInfo
) -> None:
    """Warn when two instances that differ in a text or path parameter get one ``state_key``.

    Text and path parameters name what a state is about (a monitored metric, a file, a folder): two instances that
    differ there are two callbacks of one training, and one key would make their saved states overwrite each other.
    Numbers and flags are left alone: they tune a callback, and a resumed training may change them.
    """
    if not overrides(type(instance), "state_dict"):
        return
    signature = _signature.parameters(factory) or {}
    label = _name(factory)
    for name, parameter in signature.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            continue
        value = arguments.get(name, parameter.default)
        if isinstance(value, str):
            other: object = f"{value}_other"
        elif isinstance(value, os.PathLike):
            other = pathlib.Path(f"{os.fspath(value)}_other")
        else:
            continue
        try:
            variant = _signature.build(factory, {**arguments, name: other}, info)
            same = _state.key_of(variant) == _state.key_of(instance)
        except Exception:  # a value the callback refuses (a choice of modes, say) proves nothing
            continue
        if same:
            warnings.warn(
                f"{label}.state_key is the same for {name}={safe_repr(value, VALUE_LIMIT)} and "
                f"{name}={safe_repr(other, VALUE_LIMIT)}: two instances that differ there would overwrite each "
                f"other's saved state; put {name!r} in state_key (an operator can still set state_key in a config "
                "item)",
                UserWarning,
                stacklevel=4,
            )


# -- the entry points ------------------------------------------------------------------------------------------------


def conformance_problems(
    callback: object, *, plugin_name: str | None = None, params: Mapping[str, object] | None = None
) -> list[str]:
    """Every way ``callback`` does not fit the contract, one sentence each; ``[]`` when it conforms.

    See :func:`check_callback` for what is checked.
    """
    problems: list[str] = []
    factory, instance = _subject(callback, problems)
    if factory is None:
        return problems
    if plugin_name is not None:
        _check_registration(plugin_name, factory, problems)
    _check_parameters(factory, problems)
    rebuild: Callable[[], BaseCallback] | None = None
    if instance is None:
        info = _info(factory, plugin_name)
        arguments = dict(params or {})

        def rebuild() -> BaseCallback:
            return _signature.build(factory, arguments, info)

        try:
            instance = rebuild()
        except SaraError as error:
            given = f"with params {safe_repr(arguments, VALUE_LIMIT)}" if arguments else "without parameters"
            problems.append(
                f"cannot build it {given} to check its hooks and state: {_one_line(error)}; pass an instance, "
                "or params={...}"
            )
            if isinstance(factory, type):
                problems += hook_problems(factory)
            return problems
    problems += hook_problems(type(instance))
    _check_state(instance, rebuild, problems)
    if rebuild is not None:
        _warn_state_key_ignores(factory, instance, dict(params or {}), _info(factory, plugin_name))
    return problems


def check_callback(
    callback: object, *, plugin_name: str | None = None, params: Mapping[str, object] | None = None
) -> None:
    """Check that a callback fits the contract; raise one error that lists every problem.

    What is checked:

    * its hooks: every ``on_*`` method is a hook of :data:`~altametris.sara.core.hookspecs.HOOKS` (no misspelling
      that would never run), is a plain (not ``async``) method, and requires no argument other than the hookspec's
      (others need a default, or come through ``**kwargs``);
    * its constructor, read as ``sara-callbacks show`` and the config checks read it: a docstring, a signature,
      an annotation on every parameter that resolves at run time, defaults that fit their annotations, no required
      positional-only parameter, at least one hook overridden;
    * its state: ``state_dict`` and ``load_state_dict`` overridden together, a non-empty ``state_key``, and
      ``state_dict() -> JSON -> load_state_dict() -> state_dict()`` giving the same state (into a new instance when
      it can build one). Pass an instance that has run (see :func:`~altametris.sara.core.testing.simulate`) to
      check a state with something in it. Given a class or factory, it also warns (``UserWarning``) when two
      instances that differ in a text or path parameter (a metric, a file) get one ``state_key``;
    * with ``plugin_name``, that the installed distributions register it under that name in the ``sara.callbacks``
      entry-point group.

    Args:
        callback: a ``BaseCallback`` subclass, an instance, or a factory returning one.
        plugin_name: the plugin's name, to check its registration and to name it in the message.
        params: the constructor's keyword arguments, to build a class or a factory (checked as a config's are).

    Raises:
        ConformanceError: listing every problem found, one per line (also in its ``problems`` attribute).

    Example:
        >>> from altametris.sara.core.base_callback import BaseCallback
        >>> class Sloppy(BaseCallback):
        ...     '''Counts epochs, badly.'''
        ...     def on_epoch_ned(self, epoch, metrics):
        ...         pass
        ...     def on_batch_end(self, batch, lr):
        ...         pass
        >>> check_callback(Sloppy)
        Traceback (most recent call last):
        ...
        altametris.sara.core.exceptions.ConformanceError: Sloppy does not fit the callback contract; 2 problems:
          - Sloppy.on_epoch_ned is no hook of SARA callbacks and would never be called; did you mean 'on_epoch_end'?
          - Sloppy.on_batch_end requires 'lr', which is no argument of on_batch_end (its arguments: batch, metrics): ...
    """
    problems = conformance_problems(callback, plugin_name=plugin_name, params=params)
    if not problems:
        return
    label = _name(callback) if plugin_name is None else f"plugin {plugin_name!r} ({_name(callback)})"
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    raise ConformanceError(
        f"{label} does not fit the callback contract; {count}:\n" + "\n".join(f"  - {problem}" for problem in problems),
        callback=callback,
        problems=problems,
        plugin=plugin_name,
    )
