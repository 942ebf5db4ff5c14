"""Public names imported on first use, for the package facades that would otherwise import everything at once.

Nothing here is public. A facade lists which submodule holds each lazy name and assigns what :func:`exports`
returns to its own ``__getattr__`` and ``__dir__`` (PEP 562); the first access imports the submodule and keeps the
value in the facade's namespace, so later accesses cost a plain lookup.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__: list[str] = []


def exports(package: str, lazy: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose names ``lazy`` maps to the submodules holding them."""

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *lazy})

    return __getattr__, __dir__
