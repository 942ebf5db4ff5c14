"""The training lifecycle, written once, as pluggy hookspecs.

This module is the single source of truth for the hooks' names, their arguments and their order.
:class:`~altametris.sara.core.base_callback.BaseCallback`, the
:class:`~altametris.sara.core.base_callback.CallbackManager` and the documentation are checked against it by the
test suite.

Order of calls within one training (epochs and batches are 0-indexed)::

    on_train_start
    for each epoch:
        on_epoch_start(epoch)
        for each batch:
            on_batch_start(batch)
            on_batch_end(batch, metrics)
        on_validation_start
        on_validation_end(metrics)
        on_epoch_end(epoch, metrics)
    on_train_end

    on_exception(error)   # instead of the rest, when the training fails

Every hook also receives the trainer's context keyword arguments (``model=...``, ``control=...``) in ``**kwargs``.

The markers use the pluggy project name ``"sara"``, so the specs can be given to a :class:`pluggy.PluginManager`:

    >>> import pluggy
    >>> from altametris.sara.core import hookspecs
    >>> pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    >>> pm.add_hookspecs(hookspecs)
    >>> sorted(hookspecs.HOOKS) == sorted(name for name in dir(pm.hook) if name.startswith("on_"))
    True
    >>> hookspecs.HOOKS["on_epoch_end"].argnames
    ('epoch', 'metrics')
"""

from __future__ import annotations

import inspect
import sys
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CLEANUP_HOOKS",
    "HOOKS",
    "PROJECT_NAME",
    "HookSpec",
    "Metrics",
    "hookimpl",
    "hookspec",
    "on_batch_end",
    "on_batch_start",
    "on_epoch_end",
    "on_epoch_start",
    "on_exception",
    "on_train_end",
    "on_train_start",
    "on_validation_end",
    "on_validation_start",
]

PROJECT_NAME = "sara"
"""The pluggy project name of the markers below."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function as a hook specification of the ``sara`` project."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a function as an implementation of a ``sara`` hook (for plain pluggy plugins)."""

Metrics = dict[str, float]
"""Metric names to values, as the trainer reports them (``{"loss": 0.5}``)."""


@hookspec
def on_train_start() -> None:
    """Called once, before the first epoch.

    Its context (as every hook's) holds ``model``, ``epochs`` and ``config``.
    """


@hookspec
def on_train_end() -> None:
    """Called once, after the last epoch (or after a stop request), when the training did not fail.

    Its context also holds ``metrics`` (the last epoch's) and, when a checkpoint was written, ``model_path``.
    """


@hookspec
def on_epoch_start(epoch: int) -> None:
    """Called at the start of every epoch.

    Args:
        epoch: the epoch number, 0-indexed.
    """


@hookspec
def on_epoch_end(epoch: int, metrics: Metrics) -> None:
    """Called at the end of every epoch, after validation.

    Args:
        epoch: the epoch number, 0-indexed.
        metrics: the epoch's metrics (training and validation).
    """


@hookspec
def on_batch_start(batch: int) -> None:
    """Called before every training batch; its context holds the batch's data as ``batch_data``.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


@hookspec
def on_batch_end(batch: int, metrics: Metrics) -> None:
    """Called after every training batch; its context holds the batch's data as ``batch_data``.

    Args:
        batch: the batch number within the epoch, 0-indexed.
        metrics: the batch's metrics.
    """


@hookspec
def on_validation_start() -> None:
    """Called before the validation of every epoch."""


@hookspec
def on_validation_end(metrics: Metrics) -> None:
    """Called after the validation of every epoch.

    Args:
        metrics: the validation metrics.
    """


@hookspec
def on_exception(error: BaseException) -> None:
    """Called instead of the remaining hooks when the training fails; the trainer re-raises ``error`` afterwards.

    Callbacks close files and connections here. An error raised by this hook never hides ``error``.

    Args:
        error: the exception that ended the training.
    """


CLEANUP_HOOKS = frozenset({"on_exception"})
"""Hooks that run on every callback even when one of them fails; their failures are logged, never raised, so that
they cannot hide the error being handled."""


class HookSpec(NamedTuple):
    """What a hook is: its name, its arguments in order, its documentation, and whether it is a cleanup hook."""

    name: str
    argnames: tuple[str, ...]
    doc: str
    cleanup: bool


def _collect(namespace: object) -> Mapping[str, HookSpec]:
    specs: dict[str, HookSpec] = {}
    for name, function in vars(namespace).items():
        if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec"):
            argnames = tuple(inspect.signature(function).parameters)
            specs[name] = HookSpec(name, argnames, inspect.getdoc(function) or "", name in CLEANUP_HOOKS)
    return MappingProxyType(specs)


HOOKS: Mapping[str, HookSpec] = _collect(sys.modules[__name__])
"""Every hook, by name, in lifecycle order (the order of the definitions above)."""
