"""Checking a plugin's parameters against its constructor, before calling it.

Nothing here is public: :func:`~altametris.sara.core.discovery.create_callback` and the config loader use it.
A config's parameters are data (TOML, YAML, JSON), so they are checked, never converted: ``"3"`` where an ``int`` is
expected is refused, as is ``true`` (a ``bool``) where an ``int`` is expected; an ``int`` is a fine ``float``.
Annotations are read from the constructor (``__init__`` of a class, or the factory function), resolved one by one
in the plugin module's namespace; one that cannot be resolved (a name imported under ``TYPE_CHECKING``) is simply not
checked. Supported: plain classes, ``Any``, ``None``, ``Optional``/``Union`` (and ``X | Y``, also on Python 3.9),
``Literal``, ``list``/``dict``/``tuple``/``set`` and the ``collections.abc`` containers with their item types, and
paths (``pathlib.Path`` and ``os.PathLike`` accept a string).
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from collections import abc
from typing import TYPE_CHECKING, Any

from .._callback import BaseCallback
from ..exceptions import PluginParameterError, PluginTypeError, SaraError
from ..messages import VALUE_LIMIT, describe_error, did_you_mean, safe_repr

if TYPE_CHECKING:
    from collections.abc import Mapping

    from . import PluginFactory, PluginInfo

__all__: list[str] = []

UNRESOLVED = object()
"""An annotation that could not be evaluated: not checked."""

_UNION_TYPES: tuple[object, ...] = (typing.Union,)
if sys.version_info >= (3, 10):
    import types

    _UNION_TYPES += (types.UnionType,)

# A string is a sequence of strings, yet never what a parameter annotated with one of these wants.
_CALLABLE: object = abc.Callable

_NOT_FOR_STRINGS = (abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection, abc.Container, abc.Reversible)


def _evaluate(text: str, namespace: dict[str, Any]) -> object:
    """Evaluate the annotation ``text`` in the plugin module's namespace, or return ``UNRESOLVED``."""
    try:
        return eval(text, dict(namespace))  # the plugin's own annotation, from the module we imported
    except TypeError:
        if "|" not in text:
            return UNRESOLVED
        return _evaluate_union(text, namespace)  # ``int | None`` on Python 3.9
    except Exception:
        return UNRESOLVED


def _evaluate_union(text: str, namespace: dict[str, Any]) -> object:
    """``X | Y`` spelt as ``Union[X, Y]``, for Pythons whose types do not support ``|`` yet."""
    import ast

    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return UNRESOLVED
    arms: list[ast.expr] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            pending += [node.right, node.left]
        else:
            arms.append(node)
    if len(arms) < 2:
        return UNRESOLVED
    values = []
    for arm in arms:
        try:
            values.append(eval(compile(ast.Expression(arm), "<annotation>", "eval"), dict(namespace)))
        except Exception:
            return UNRESOLVED
    return typing.Union[tuple(values)]


def constructor(factory: PluginFactory) -> object:
    """The function whose annotations describe ``factory``'s parameters."""
    if not isinstance(factory, type):
        return factory
    for klass in factory.__mro__:
        if klass is object:
            break
        if "__init__" in vars(klass):
            return vars(klass)["__init__"]
        if "__new__" in vars(klass):
            return vars(klass)["__new__"]
    return None


def annotations_of(factory: PluginFactory) -> dict[str, object]:
    function = inspect.unwrap(constructor(factory) or factory)  # type: ignore[arg-type]
    raw = getattr(function, "__annotations__", None)
    if not isinstance(raw, dict):
        return {}
    namespace = getattr(function, "__globals__", {})
    return {name: _evaluate(value, namespace) if isinstance(value, str) else value for name, value in raw.items()}


def type_name(annotation: object) -> str:
    """An annotation as a person writes it: ``int``, ``Optional[float]``, ``Literal['min', 'max']``."""
    if isinstance(annotation, str):
        return annotation
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__ if annotation.__module__ == "builtins" else annotation.__name__
    return repr(annotation).replace("typing.", "").replace("collections.abc.", "")


def _literal_choices(annotation: object) -> tuple[object, ...] | None:
    """The values of a ``Literal`` annotation (also inside ``Optional``, ``Union`` and ``Annotated``), else ``None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)
    if origin is typing.Annotated:
        return _literal_choices(typing.get_args(annotation)[0])
    if origin in _UNION_TYPES:
        found: list[object] = []
        for arm in typing.get_args(annotation):
            values = (None,) if arm is type(None) else _literal_choices(arm)
            if values is None:
                return None  # ``Literal["a"] | int``: not a closed set of values
            found += [value for value in values if value not in found]
        return tuple(found)
    return None


def choices(factory: PluginFactory) -> dict[str, tuple[object, ...]]:
    """The values each parameter of ``factory`` accepts, for the parameters that accept a closed set of values.

    They come from ``Literal`` annotations, then from the factory's own declaration, ``parameter_choices`` (see
    :attr:`~altametris.sara.core.base_callback.BaseCallback.parameter_choices`), which wins for the names it gives.
    A declaration that is not a mapping of names to sequences of values is ignored here (the testing kit reports it).

    Example:
        >>> from typing import Literal
        >>> from altametris.sara.core.base_callback import BaseCallback
        >>> class Alert(BaseCallback):
        ...     parameter_choices = {"mode": ("min", "max")}
        ...     def __init__(self, mode: str = "min", side: Literal["above", "below"] = "above") -> None: ...
        >>> choices(Alert)
        {'side': ('above', 'below'), 'mode': ('min', 'max')}
    """
    found: dict[str, tuple[object, ...]] = {}
    for name, annotation in annotations_of(factory).items():
        literal = _literal_choices(annotation)
        if literal is not None and name != "return":
            found[name] = literal
    declared: object = getattr(factory, "parameter_choices", None)
    if isinstance(declared, abc.Mapping):
        for key, values in declared.items():
            if isinstance(key, str) and isinstance(values, (abc.Sequence, abc.Set)) and not isinstance(values, str):
                found[key] = tuple(values)
    return found


def in_choices(value: object, allowed: tuple[object, ...]) -> bool:
    """Whether ``value`` is one of ``allowed``, of the same type too (``True`` is not ``1``, ``1`` is not ``1.0``)."""
    return any(type(value) is type(choice) and value == choice for choice in allowed)


def _is_path_type(annotation: object) -> bool:
    import pathlib

    return annotation is os.PathLike or (isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath))


def conforms(value: object, annotation: object) -> bool:  # noqa: PLR0911, PLR0912 - one case per kind of type
    """Whether ``value`` fits ``annotation``; ``True`` for what cannot be checked.

    Example:
        >>> from typing import Literal, Optional
        >>> conforms(3, float), conforms(True, int), conforms("3", int), conforms(None, Optional[int])
        (True, False, False, True)
        >>> conforms("max", Literal["min", "max"]), conforms(["a", 1], list[str]), conforms("a", list)
        (True, False, False)
    """
    if annotation is UNRESOLVED or annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        return any(conforms(value, arm) for arm in args)
    if origin is typing.Literal:
        return in_choices(value, args)
    if origin is typing.Annotated:
        return conforms(value, args[0])
    if origin is None:
        return _conforms_class(value, annotation)
    if _is_path_type(origin):
        return isinstance(value, (str, os.PathLike))
    if not isinstance(origin, type):
        return True  # ClassVar, Final, a TypeVar-based alias ...: not checked
    if origin is _CALLABLE:
        return callable(value)
    if origin is type:
        return isinstance(value, type) and (not args or not isinstance(args[0], type) or issubclass(value, args[0]))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):  # TOML, YAML and JSON have lists, not tuples
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return not args or all(conforms(item, args[0]) for item in value)
        if args == ((),):
            return not value
        return len(value) == len(args) and all(conforms(item, arm) for item, arm in zip(value, args))
    if origin in _NOT_FOR_STRINGS and isinstance(value, (str, bytes)):
        return False
    try:
        if not isinstance(value, origin):
            return False
    except TypeError:
        return True
    if isinstance(value, abc.Mapping) and len(args) == 2:
        return all(conforms(key, args[0]) and conforms(item, args[1]) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)) and len(args) == 1:
        return all(conforms(item, args[0]) for item in value)
    return True


def _conforms_class(value: object, annotation: object) -> bool:  # noqa: PLR0911 - one case per kind of type
    if not isinstance(annotation, type):
        return True  # a TypeVar, a NewType, a string that did not resolve ...: not checked
    if annotation is bool:
        return isinstance(value, bool)
    if annotation in (int, float, complex) and isinstance(value, bool):
        return False
    if annotation is float:
        return isinstance(value, (int, float))
    if annotation is complex:
        return isinstance(value, (int, float, complex))
    if _is_path_type(annotation):
        return isinstance(value, (str, os.PathLike))
    if annotation in _NOT_FOR_STRINGS and isinstance(value, (str, bytes)):
        return False
    try:
        return isinstance(value, annotation)
    except TypeError:  # a protocol that is not runtime-checkable, say
        return True


def _hint(value: object, annotation: object, info: PluginInfo) -> str:
    if isinstance(value, str):
        for parse in (int, float):
            try:
                parse(value)
            except ValueError:
                continue
            if not conforms(value, annotation) and conforms(parse(value), annotation):
                return "write the number without quotes"
        if value.lower() in ("true", "false") and conforms(True, annotation):
            return "write true or false without quotes"
    if isinstance(value, bool) and conforms(int(value), annotation):
        return "write a number, not a boolean"
    return f"`sara-callbacks show {info.name}` describes its parameters"


def parameters(factory: PluginFactory) -> Mapping[str, inspect.Parameter] | None:
    """``factory``'s parameters as a call sees them (``self`` left out), ``None`` when they cannot be known."""
    init = constructor(factory)
    if isinstance(factory, type) and type(factory).__call__ is type.__call__:  # no metaclass that changes the call
        if init is None:
            return {}  # object's constructor: no parameters (inspect would parse object.__init__'s text signature)
        allocator: object = factory.__new__
        if inspect.isfunction(init) and init.__name__ == "__init__" and allocator is object.__new__:
            items = list(inspect.signature(init).parameters.items())[1:]
            return dict(items)
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to check against (a builtin): the call will tell
        return None


def problems(factory: PluginFactory, params: Mapping[str, object], info: PluginInfo) -> list[PluginParameterError]:
    """Every reason why ``factory(**params)`` would not bind, in the order of ``params``, then missing ones."""
    signature = parameters(factory)
    if signature is None:
        return []
    kinds = inspect.Parameter
    takes_any = any(p.kind is kinds.VAR_KEYWORD for p in signature.values())
    named = {name: p for name, p in signature.items() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    hints = annotations_of(factory)
    closed = choices(factory)
    found: list[PluginParameterError] = []

    def refuse(message: str, parameter: str | None, **extra: Any) -> None:
        found.append(
            PluginParameterError(
                f"{info.describe(target=False)}: {message}",
                **info.error_fields(),
                parameter=parameter,
                **extra,
            )
        )

    for name, value in params.items():
        parameter = named.get(name)
        if parameter is None:
            if takes_any and name not in signature:
                continue
            hint = did_you_mean(name, named)
            accepted = ", ".join(named) or "none"
            why = "is positional-only" if name in signature else "is unknown"
            refuse(
                f"parameter {safe_repr(name, VALUE_LIMIT)} {why}; {hint}its parameters are: {accepted}",
                name,
                found=value,
            )
            continue
        annotation = hints.get(name, UNRESOLVED)
        if not conforms(value, annotation):
            expected = type_name(annotation)
            refuse(
                f"parameter {name!r} expects {expected}, "
                f"got {type(value).__qualname__} {safe_repr(value, VALUE_LIMIT)}; "
                f"{_hint(value, annotation, info)}",
                name,
                expected=expected,
                found=value,
            )
        elif name in closed and not in_choices(value, closed[name]):
            expected = "one of " + ", ".join(safe_repr(choice, VALUE_LIMIT) for choice in closed[name])
            hint = did_you_mean(value, [choice for choice in closed[name] if isinstance(choice, str)])
            refuse(
                f"parameter {name!r} expects {expected}, got {safe_repr(value, VALUE_LIMIT)}"
                + (f"; {hint.rstrip()}" if hint else ""),
                name,
                expected=expected,
                found=value,
            )
    for name, parameter in signature.items():
        if parameter.default is not parameter.empty or parameter.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD):
            continue
        if parameter.kind is kinds.POSITIONAL_ONLY:
            refuse(
                f"its constructor requires the positional-only parameter {name!r}, which a config cannot give; "
                f"the plugin must make it a keyword parameter",
                name,
            )
        elif name not in params:
            annotation = hints.get(name, UNRESOLVED)
            kind = "" if annotation is UNRESOLVED else f" ({type_name(annotation)})"
            refuse(f"required parameter {name!r}{kind} is missing; add it to the params", name)
    return found


def blamed_parameter(error: BaseException, params: Mapping[str, object]) -> str | None:
    """The parameter of ``params`` that a constructor's ``error`` is about, or ``None`` when it names none.

    The error's own ``parameter`` attribute wins (``PluginParameterError(..., parameter="threshold")``, or any
    exception a plugin gives that attribute); otherwise the given parameter that the message names first, as a whole
    word (``"'threshold' must be finite"``, ``"threshold must be finite"``).

    Example:
        >>> blamed_parameter(ValueError("window must exceed size, got 0"), {"size": 3, "window": 0})
        'window'
        >>> blamed_parameter(ValueError("something failed"), {"window": 0}) is None
        True
    """
    own = getattr(error, "parameter", None)
    if isinstance(own, str) and own:
        return own
    try:
        text = str(error)[:2000]  # a parameter is named near the start; a huge message is not searched whole
    except Exception:
        return None
    import re

    found = []
    for name in params:
        match = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) if isinstance(name, str) and name else None
        if match is not None:
            found.append((match.start(), name))
    return min(found)[1] if found else None


def construct(factory: PluginFactory, params: Mapping[str, object], info: PluginInfo) -> BaseCallback:
    """Call ``factory(**params)``; wrap what it raises, and check what it returns.

    What the constructor raises names the plugin and its distribution, and keeps the parameter it is about (see
    :func:`blamed_parameter`) as ``parameter``: a config reports it at ``callbacks[i].params.<parameter>``. A
    ``SystemExit`` (a constructor calling ``sys.exit()``) is the plugin's fault, reported like any other error instead
    of ending the process.
    """
    try:
        callback = factory(**params)
    except SaraError as error:
        for attribute, value in (("plugin", info.name), ("distribution", info.requirement), ("target", info.target)):
            if getattr(error, attribute, UNRESOLVED) is None:
                setattr(error, attribute, value)
        if isinstance(error, PluginParameterError) and error.parameter is None:
            error.parameter = blamed_parameter(error, params)
        _name_the_plugin(error, info)
        raise
    except (Exception, SystemExit) as error:
        parameter = blamed_parameter(error, params)
        if isinstance(error, SystemExit):
            what = f"called sys.exit({safe_repr(error.code, VALUE_LIMIT)})"
            fix = "a constructor must raise an exception, not end the process: report it to the plugin's authors"
        else:
            what = f"raised {describe_error(error)}"
            fix = "fix the params, or report it to the plugin's authors if they are right"
        raise PluginParameterError(
            f"{info.describe()}: its constructor {what} (with params {safe_repr(dict(params), VALUE_LIMIT)}); {fix}",
            **info.error_fields(),
            parameter=parameter,
        ) from error
    if not isinstance(callback, BaseCallback):
        raise PluginTypeError(
            f"{info.describe()} is not a callback: its factory returned {type(callback).__qualname__} "
            f"{safe_repr(callback, VALUE_LIMIT)}, expected a BaseCallback instance; "
            "the factory must return a BaseCallback",
            **info.error_fields(),
            found=callback,
        )
    return callback


def _name_the_plugin(error: SaraError, info: PluginInfo) -> None:
    """Start the message of a plugin's own error with the plugin and its distribution, as SARA's own errors do.

    A message that starts with the plugin's bare name and a colon (``"grad_alert: 'threshold' must be finite"``, the
    built-ins' way) has that name replaced; a message that already names the distribution is left as it is.
    """
    try:
        text = str(error)
    except Exception:
        text = type(error).__qualname__
    if info.requirement is None or info.requirement in text:
        return
    text = text.removeprefix(f"{info.name}: ")
    error.args = (f"{info.describe(target=False)}: {text}",)


def build(factory: PluginFactory, params: Mapping[str, object], info: PluginInfo) -> BaseCallback:
    """Check ``params`` against ``factory``, then call it; raise the first problem."""
    found = problems(factory, params, info)
    if found:
        raise found[0]
    return construct(factory, params, info)
