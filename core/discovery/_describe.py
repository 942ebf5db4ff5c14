"""What a plugin is, as ``sara-callbacks show``, the built-ins page and the testing kit describe it.

Nothing here is public. The parameters come from the same reader as the config checks
(:func:`~altametris.sara.core.discovery._signature.parameters`), so that what ``show`` lists is what a config may give.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .._callback import BaseCallback, overrides
from ..hookspecs import HOOKS
from ..messages import safe_repr
from . import _signature
from ._signature import type_name

if TYPE_CHECKING:
    from . import PluginFactory

__all__: list[str] = []


def description(factory: PluginFactory) -> str:
    """``factory``'s own docstring, cleaned; ``""`` when it has none.

    Not :func:`inspect.getdoc`, which gives a class without a docstring its base class's: ``BaseCallback``'s words
    about hooks would read as the plugin's.
    """
    doc = getattr(factory, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def parameters(factory: PluginFactory) -> list[dict[str, Any]]:
    """``factory``'s keyword parameters, as ``show``, ``show --json`` and the built-ins page describe them.

    Each is a dictionary of JSON values:

    * ``name``; ``annotation``: the annotation as written, or ``None``;
    * ``required``: ``True`` when it has no default;
    * ``default``: the default as a config writes it (a JSON value: ``"loss"``, ``null``, ``true``, ``[0, 0]``), or
      ``None`` when required or when the default has no such form (a ``Path``, an infinite float ...);
    * ``default_text``: the default as Python writes it (``'loss'``, ``None``, ``PosixPath('out')``), or ``None``
      when required;
    * ``choices``: the values it accepts, as JSON values, when they are a closed set (a ``Literal`` annotation or the
      plugin's ``parameter_choices``), else ``None``; ``choices_text``: the same as Python writes them.

    Empty when the constructor has no signature that can be read.

    Example:
        >>> from altametris.sara.plugins.early_stopping import EarlyStopping
        >>> mode = parameters(EarlyStopping)[1]
        >>> mode["default"], mode["default_text"], mode["choices"]
        ('min', "'min'", ['min', 'max'])
    """
    found = []
    closed = _signature.choices(factory)
    for parameter in (_signature.parameters(factory) or {}).values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        required = parameter.default is parameter.empty
        allowed = closed.get(parameter.name)
        found.append(
            {
                "name": parameter.name,
                "annotation": None if parameter.annotation is parameter.empty else type_name(parameter.annotation),
                "default": None if required else _as_json(parameter.default),
                "default_text": None if required else safe_repr(parameter.default, _TEXT_LIMIT),
                "required": required,
                "choices": None if allowed is None else [_as_json(choice) for choice in allowed],
                "choices_text": None if allowed is None else [safe_repr(choice, _TEXT_LIMIT) for choice in allowed],
            }
        )
    return found


_TEXT_LIMIT = 200


def _as_json(value: object) -> object:
    """``value`` as the JSON value a config would write for it, or ``None`` when it has none."""
    import json

    try:
        written = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return json.loads(written) if len(written) <= 10 * _TEXT_LIMIT else None


def parameter_line(parameter: dict[str, Any]) -> str:
    """One parameter as ``show`` prints it: ``mode: str = 'min' (one of: 'min', 'max')``."""
    annotation = f": {parameter['annotation']}" if parameter["annotation"] else ""
    default = " (required)" if parameter["required"] else f" = {parameter['default_text']}"
    allowed = f" (one of: {', '.join(parameter['choices_text'])})" if parameter["choices_text"] is not None else ""
    return f"{parameter['name']}{annotation}{default}{allowed}"


def hooks(factory: PluginFactory) -> list[str] | None:
    """The hooks ``factory``'s callbacks override; ``None`` when that cannot be known without arguments."""
    cls: type | None = factory if isinstance(factory, type) else None
    if cls is None:
        try:
            signature = inspect.signature(factory)
            callback = (
                factory()
                if all(
                    p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                    for p in signature.parameters.values()
                )
                else None
            )
        except Exception:  # a factory that needs arguments, or fails: say it is unknown
            callback = None
        if not isinstance(callback, BaseCallback):
            return None
        return [hook for hook in HOOKS if overrides(callback, hook)]
    return [hook for hook in HOOKS if overrides(cls, hook)]
