"""Callbacks and the manager that calls them: the seed's path, where users import both.

:class:`BaseCallback` lives in ``_callback.py`` and :class:`CallbackManager` in ``_manager.py``; this module is their
documented home. A callback subclasses :class:`BaseCallback` and overrides the hooks it cares about; a trainer builds a
:class:`CallbackManager` and calls its hooks from the training loop. The hooks, their arguments and their order are
those of :mod:`altametris.sara.core.hookspecs`.

Example:
    >>> from altametris.sara.core.base_callback import BaseCallback, CallbackManager
    >>> class LoggingCallback(BaseCallback):
    ...     def on_epoch_end(self, epoch, metrics):
    ...         print(f"Epoch {epoch}: loss={metrics['loss']}")
    >>> manager = CallbackManager([LoggingCallback()])
    >>> manager.on_epoch_end(epoch=1, metrics={"loss": 0.5})
    Epoch 1: loss=0.5

A callback's exception reaches the trainer as a :class:`~altametris.sara.core.exceptions.TrainingError` that names the
callback, the hook and where the training was, with the original exception as ``__cause__``:

    >>> class Broken(BaseCallback):
    ...     def on_batch_end(self, batch, metrics, **kwargs):
    ...         raise ValueError("no loss")
    >>> from altametris.sara.core.exceptions import TrainingError
    >>> try:
    ...     CallbackManager([Broken()]).on_batch_end(7, {})
    ... except TrainingError as error:
    ...     print(error)
    ...     print(repr(error.__cause__))
    callback 'Broken' failed in on_batch_end (batch 7): ValueError: no loss
    ValueError('no loss')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _failures
from ._callback import BaseCallback
from ._failures import ErrorPolicy
from ._manager import CallbackManager, ConfigSource

__all__ = ["BaseCallback", "CallbackManager", "ConfigSource", "ErrorPolicy", "logger"]

CallbackManager.__module__ = __name__  # its documented home, as reprs, pickles and the docs show it

if TYPE_CHECKING:
    import logging

    logger: logging.Logger
    """The logger of the callback machinery (``altametris.sara.core.base_callback``)."""


def __getattr__(name: str) -> Any:
    # ``logger`` is made on first use: ``logging`` costs about as much to import as pluggy, and a training that
    # never fails never needs it.
    if name == "logger":
        return _failures.logger()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
