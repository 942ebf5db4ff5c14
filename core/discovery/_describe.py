"""What a plugin is, as ``sara-callbacks show``, the built-ins page and the testing kit describe it.

Nothing here is public. The parameters come from the same reader as the config checks
(:func:`~altametris.sara.core.discovery._signature.parameters`), so that what ``show`` lists is what a config may give.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .._callback import BaseCallback, overrides
from ..hookspecs import HOOKS
from ._signature import parameters as _signature_parameters
from ._signature import type_name

if TYPE_CHECKING:
    from . import PluginFactory

__all__: list[str] = []


def parameters(factory: PluginFactory) -> list[dict[str, Any]]:
    """``factory``'s keyword parameters: name, annotation (as written), default (its ``repr``) and whether required.

    Empty when the constructor has no signature that can be read.
    """
    found = []
    for parameter in (_signature_parameters(factory) or {}).values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        found.append(
            {
                "name": parameter.name,
                "annotation": None if parameter.annotation is parameter.empty else type_name(parameter.annotation),
                "default": None if parameter.default is parameter.empty else repr(parameter.default),
                "required": parameter.default is parameter.empty,
            }
        )
    return found


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
