"""Constructor parameter checks shared by the built-in plugins.

Each check returns the value when it fits and raises
:class:`~altametris.sara.core.exceptions.PluginParameterError` naming the plugin and the parameter otherwise. Values
are never converted: a string where an int is expected is refused (a config file that says ``patience = "3"`` has a
mistake worth reporting), and so is a ``bool`` where a number is expected.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import TYPE_CHECKING

from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.messages import safe_repr

if TYPE_CHECKING:
    from collections.abc import Collection

__all__: list[str] = []


def _refuse(plugin: str, name: str, expected: str, value: object) -> PluginParameterError:
    return PluginParameterError(
        f"{plugin}: parameter {name!r} expects {expected}, got {safe_repr(value)} ({type(value).__name__})",
        plugin=plugin,
        parameter=name,
    )


def check_int(plugin: str, name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (not a ``bool``, not a ``str``), at least ``minimum`` when given."""
    expected = "an int" if minimum is None else f"an int >= {minimum}"
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise _refuse(plugin, name, expected, value)
    return value


def check_float(
    plugin: str, name: str, value: object, *, minimum: float | None = None, positive: bool = False
) -> float:
    """``value`` as a finite ``float`` (an ``int`` is accepted), ``>= minimum`` or ``> 0`` when asked."""
    expected = "a finite number" + (f" >= {minimum}" if minimum is not None else "") + (" > 0" if positive else "")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _refuse(plugin, name, expected, value)
    if (minimum is not None and value < minimum) or (positive and value <= 0):
        raise _refuse(plugin, name, expected, value)
    return float(value)


def check_bool(plugin: str, name: str, value: object) -> bool:
    """``value`` as a ``bool`` (``0``, ``1`` and ``"true"`` are refused)."""
    if not isinstance(value, bool):
        raise _refuse(plugin, name, "true or false", value)
    return value


def check_str(plugin: str, name: str, value: object) -> str:
    """``value`` as a non-empty ``str``."""
    if not isinstance(value, str) or not value:
        raise _refuse(plugin, name, "a non-empty string", value)
    return value


def check_choice(plugin: str, name: str, value: object, choices: Collection[str]) -> str:
    """``value``, one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise _refuse(plugin, name, "one of " + ", ".join(repr(choice) for choice in choices), value)
    return value


def check_path(plugin: str, name: str, value: object) -> pathlib.Path:
    """``value`` (a ``str`` or ``os.PathLike``, not empty) as a :class:`pathlib.Path`; nothing is touched on disk.

    A relative path must stay inside the folder it will resolve against (the trainer's ``output_dir``, the demo's run
    folder): ``../escape.csv`` is refused. Writing elsewhere takes an absolute path, given on purpose.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\0" in value:
        raise _refuse(plugin, name, "a file system path (a non-empty string)", value)
    path = pathlib.Path(value)
    if not path.is_absolute() and pathlib.Path(os.path.normpath(value)).parts[:1] == (os.pardir,):
        raise PluginParameterError(
            f"{plugin}: parameter {name!r} is {value!r}, a relative path that leaves the folder it resolves against "
            f"(the trainer's output_dir, the demo's run folder); relative paths stay inside it: give an absolute path "
            f"to write elsewhere on purpose",
            plugin=plugin,
            parameter=name,
        )
    return path
