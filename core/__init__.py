"""SARA callbacks: hook into a training loop with callbacks that others write, ``pip install`` and enable by name.

The public API, re-exported here:

* :class:`BaseCallback`, :class:`CallbackManager` (from :mod:`~altametris.sara.core.base_callback`);
* the hookspecs and the pluggy markers :data:`hookspec` / :data:`hookimpl`
  (from :mod:`~altametris.sara.core.hookspecs`);
* the errors (from :mod:`~altametris.sara.core.exceptions`).
"""

from __future__ import annotations

from .base_callback import BaseCallback, CallbackManager
from .exceptions import (
    CommandLineError,
    ConfigError,
    DuplicatePluginError,
    HookNameWarning,
    PluginError,
    PluginLoadError,
    PluginParameterError,
    PluginTypeError,
    SaraError,
    SaraWarning,
    StateError,
    TrainingError,
    UnknownPluginError,
)
from .hookspecs import HOOKS, Metrics, hookimpl, hookspec

__all__ = [
    "HOOKS",
    "BaseCallback",
    "CallbackManager",
    "CommandLineError",
    "ConfigError",
    "DuplicatePluginError",
    "HookNameWarning",
    "Metrics",
    "PluginError",
    "PluginLoadError",
    "PluginParameterError",
    "PluginTypeError",
    "SaraError",
    "SaraWarning",
    "StateError",
    "TrainingError",
    "UnknownPluginError",
    "__version__",
    "hookimpl",
    "hookspec",
]

__version__ = "0.1.0"
