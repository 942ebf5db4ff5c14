"""SARA callbacks: hook into a training loop with callbacks that others write, ``pip install`` and enable by name.

The public API, re-exported here:

* :class:`BaseCallback`, :class:`CallbackManager` (from :mod:`~altametris.sara.core.base_callback`);
* the hookspecs and the pluggy markers :data:`hookspec` / :data:`hookimpl`
  (from :mod:`~altametris.sara.core.hookspecs`), and :class:`HookimplCallback`, which runs a plain pluggy plugin as
  a callback (from :mod:`~altametris.sara.core.hookimpls`);
* the errors (from :mod:`~altametris.sara.core.exceptions`);
* stopping a training without failing it (from :mod:`~altametris.sara.core.control`), the reference loop
  :func:`fit` (from :mod:`~altametris.sara.core.loop`) and :class:`TrainingRun`, the same for a loop of your own
  (from :mod:`~altametris.sara.core.training_run`);
* plugins by name (from :mod:`~altametris.sara.core.discovery`) and config files
  (from :mod:`~altametris.sara.core.config`);
* :class:`Trigger`, when a callback runs (from :mod:`~altametris.sara.core.triggers`), and :class:`Timings`, what
  each callback costs (from :mod:`~altametris.sara.core.profiling`).

The last four groups are imported on first use, so that ``import altametris.sara.core`` stays about as cheap as
``import pluggy``:

    >>> import altametris.sara.core as sara
    >>> sara.TrainingControl is __import__("altametris.sara.core.control", fromlist=["x"]).TrainingControl
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import exports as _lazy_exports
from .base_callback import BaseCallback, CallbackManager, ErrorPolicy
from .exceptions import (
    ConfigError,
    ConformanceError,
    DuplicatePluginError,
    HookNameWarning,
    MissingArgumentError,
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
from .hookimpls import HookimplCallback
from .hookspecs import HOOKS, Metrics, hookimpl, hookspec

if TYPE_CHECKING:
    from .config import check_config, load_callbacks, read_config
    from .control import StopTraining, TrainingControl, stop_training
    from .discovery import PluginInfo, available_plugins, create_callback, find_plugin, load_plugin
    from .loop import FitResult, fit
    from .profiling import Timings
    from .training_run import TrainingRun
    from .triggers import Trigger

_LAZY = {
    "check_config": "config",
    "load_callbacks": "config",
    "read_config": "config",
    "StopTraining": "control",
    "TrainingControl": "control",
    "stop_training": "control",
    "PluginInfo": "discovery",
    "available_plugins": "discovery",
    "create_callback": "discovery",
    "find_plugin": "discovery",
    "load_plugin": "discovery",
    "FitResult": "loop",
    "fit": "loop",
    "Timings": "profiling",
    "TrainingRun": "training_run",
    "Trigger": "triggers",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)


__all__ = [
    "HOOKS",
    "BaseCallback",
    "CallbackManager",
    "ConfigError",
    "ConformanceError",
    "DuplicatePluginError",
    "ErrorPolicy",
    "FitResult",
    "HookNameWarning",
    "HookimplCallback",
    "Metrics",
    "MissingArgumentError",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "PluginParameterError",
    "PluginTypeError",
    "SaraError",
    "SaraWarning",
    "StateError",
    "StopTraining",
    "Timings",
    "TrainingControl",
    "TrainingError",
    "TrainingRun",
    "Trigger",
    "UnknownPluginError",
    "__version__",
    "available_plugins",
    "check_config",
    "create_callback",
    "find_plugin",
    "fit",
    "hookimpl",
    "hookspec",
    "load_callbacks",
    "load_plugin",
    "read_config",
    "stop_training",
]

__version__ = "0.1.0"
