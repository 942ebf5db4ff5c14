"""The training lifecycle, written once, as pluggy hookspecs.

This module is the single source of truth for the hooks' names, their arguments and their order.
:class:`~altametris.sara.core.base_callback.BaseCallback`, the
:class:`~altametris.sara.core.base_callback.CallbackManager` and the documentation are checked against it by the
test suite.

Order of calls within one training (epochs and batches are 0-indexed)::

    on_checkpoint_load(path)                  # a resumed run only, once its state was restored
    on_train_start
    for each epoch:
        on_epoch_start(epoch)
        for each batch:
            on_batch_start(batch)
            on_after_backward(batch)          # where the trainer supplies them; the optimizer hooks
            on_before_optimizer_step(batch)   # only on the batches where the optimizer steps
            on_after_optimizer_step(batch)
            on_batch_end(batch, metrics)
        on_validation_start
        for each validation batch:
            on_validation_batch_start(batch)
            on_validation_batch_end(batch, metrics)
        on_validation_end(metrics)
        on_epoch_end(epoch, metrics)
        on_checkpoint_save(path)              # whenever a resumable checkpoint was written
    on_train_end

    on_exception(error)   # instead of the rest, when the training fails

Not every trainer can supply every hook (a Keras model has no backward the bridge sees): each trainer declares those
it supplies (:mod:`altametris.sara.integrations`), and a callback that overrides one its trainer never calls is
warned about once, at ``on_train_start``.

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
from typing import TYPE_CHECKING, Callable, Literal, NamedTuple, TypeVar

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

_F = TypeVar("_F", bound=Callable[..., object])

__all__ = [
    "CLEANUP_HOOKS",
    "HOOKS",
    "PROJECT_NAME",
    "Boundary",
    "HookSpec",
    "Metrics",
    "Scope",
    "hookimpl",
    "hookspec",
    "on_after_backward",
    "on_after_optimizer_step",
    "on_batch_end",
    "on_batch_start",
    "on_before_optimizer_step",
    "on_checkpoint_load",
    "on_checkpoint_save",
    "on_epoch_end",
    "on_epoch_start",
    "on_exception",
    "on_train_end",
    "on_train_start",
    "on_validation_batch_end",
    "on_validation_batch_start",
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

Scope = Literal["run", "epoch", "batch"]
"""How often a hook is called: per run (a training), within an epoch (the validation batches' hooks included), or per
training batch."""

Boundary = Literal["start", "end"]
"""Whether a hook opens or closes its scope (``on_epoch_start`` opens an epoch); hooks inside a scope have none."""

_FACTS = f"{PROJECT_NAME}_facts"


def _spec(scope: Scope, boundary: Boundary | None = None, *, cleanup: bool = False) -> Callable[[_F], _F]:
    """Mark a hookspec with its facts (see :class:`HookSpec`): every module that needs them reads them from here."""

    def mark(function: _F) -> _F:
        setattr(function, _FACTS, (scope, boundary, cleanup))
        return hookspec(function)

    return mark


@_spec("run", "start")
def on_checkpoint_load(path: str) -> None:
    """Called once in a resumed run, after the callbacks' state was restored from ``path``.

    It comes before ``on_train_start``; a fresh run has no ``on_checkpoint_load``.

    Args:
        path: the checkpoint the run resumes from.
    """


@_spec("run", "start")
def on_train_start() -> None:
    """Called once, before the first epoch.

    Its context (as every hook's) holds ``model``, ``epochs`` and ``config``; this hook's also holds ``start_epoch``
    (0 on a fresh run), ``global_step`` (the training batches completed before it, a resumed run's included),
    ``rank`` and ``world_size`` (0 and 1 in a single process).
    """


@_spec("run", "end")
def on_train_end() -> None:
    """Called once, after the last epoch (or after a stop request), when the training did not fail.

    Its context also holds ``metrics`` (the last epoch's) and, when a checkpoint was written, ``model_path``.
    """


@_spec("epoch", "start")
def on_epoch_start(epoch: int) -> None:
    """Called at the start of every epoch.

    Args:
        epoch: the epoch number, 0-indexed.
    """


@_spec("epoch", "end")
def on_epoch_end(epoch: int, metrics: Metrics) -> None:
    """Called at the end of every epoch, after validation.

    Args:
        epoch: the epoch number, 0-indexed.
        metrics: the epoch's metrics (training and validation).
    """


@_spec("batch", "start")
def on_batch_start(batch: int) -> None:
    """Called before every training batch; its context holds the batch's data as ``batch_data``.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


@_spec("batch")
def on_after_backward(batch: int) -> None:
    """Called after the loss's backward pass of a training batch, when the gradients are there to read.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


@_spec("batch")
def on_before_optimizer_step(batch: int) -> None:
    """Called right before the optimizer steps (its context holds ``optimizer`` where the trainer knows it).

    With gradient accumulation, only on the batches where the optimizer steps. Gradients are final here: check or
    clip them.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


@_spec("batch")
def on_after_optimizer_step(batch: int) -> None:
    """Called right after the optimizer stepped (the weights changed): update an EMA, log the learning rate.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


@_spec("batch", "end")
def on_batch_end(batch: int, metrics: Metrics) -> None:
    """Called after every training batch; its context holds the batch's data as ``batch_data``.

    Every training batch hook's context holds ``global_step``: the training batches completed before this one, across
    epochs and resumes.

    Args:
        batch: the batch number within the epoch, 0-indexed.
        metrics: the batch's metrics.
    """


@_spec("epoch")
def on_validation_start() -> None:
    """Called before the validation of every epoch."""


@_spec("epoch")
def on_validation_batch_start(batch: int) -> None:
    """Called before every validation batch.

    Validation batches run between ``on_validation_start`` and ``on_validation_end``.

    Args:
        batch: the batch number within the validation, 0-indexed.
    """


@_spec("epoch")
def on_validation_batch_end(batch: int, metrics: Metrics) -> None:
    """Called after every validation batch.

    Args:
        batch: the batch number within the validation, 0-indexed.
        metrics: the batch's metrics (``{}`` where the trainer computes them over the whole validation only).
    """


@_spec("epoch")
def on_validation_end(metrics: Metrics) -> None:
    """Called after the validation of every epoch.

    Args:
        metrics: the validation metrics.
    """


@_spec("run")
def on_checkpoint_save(path: str) -> None:
    """Called right after the trainer wrote a resumable checkpoint (holding the callbacks' state) at ``path``.

    Trackers and loggers make everything up to the checkpoint durable here (flush, sync, upload), so that a resume
    from it finds their records as complete as the checkpoint.

    Args:
        path: the checkpoint's file (or folder).
    """


@_spec("run", "end", cleanup=True)
def on_exception(error: BaseException) -> None:
    """Called instead of the remaining hooks when the training fails; the trainer re-raises ``error`` afterwards.

    Callbacks close files and connections here. An error raised by this hook never hides ``error``.

    Args:
        error: the exception that ended the training.
    """


class HookSpec(NamedTuple):
    """What a hook is. Every module that needs a fact about a hook reads it here, never from a list of names.

    Attributes:
        name: the hook's name.
        argnames: the arguments the trainer passes, in order (the context keywords come on top).
        doc: its documentation.
        cleanup: whether it is a cleanup hook: it runs on every callback even when one of them fails, and failures
            in it are logged, never raised, so that they cannot hide the error being handled.
        scope: how often it is called: once per ``"run"``, ``"epoch"`` or ``"batch"`` (a training batch). Triggers
            gate the ``"epoch"`` and ``"batch"`` hooks; timings measure the batch time over the ``"batch"`` hooks.
        boundary: ``"start"`` or ``"end"`` when it opens or closes its scope (``on_train_start`` starts a run, which
            resets the error policies' state), ``None`` for a hook inside its scope.
    """

    name: str
    argnames: tuple[str, ...]
    doc: str
    cleanup: bool
    scope: Scope = "run"
    boundary: Boundary | None = None

    def starts(self, scope: Scope) -> bool:
        """Whether this hook opens ``scope`` (``HOOKS["on_train_start"].starts("run")``)."""
        return self.scope == scope and self.boundary == "start"

    def ends(self, scope: Scope) -> bool:
        """Whether this hook closes ``scope``: ``on_batch_end`` ends a batch, ``on_train_end`` a run."""
        return self.scope == scope and self.boundary == "end"


def _collect(namespace: object) -> Mapping[str, HookSpec]:
    specs: dict[str, HookSpec] = {}
    for name, function in vars(namespace).items():
        if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec"):
            scope, boundary, cleanup = getattr(function, _FACTS)
            argnames = tuple(inspect.signature(function).parameters)
            specs[name] = HookSpec(name, argnames, inspect.getdoc(function) or "", cleanup, scope, boundary)
    return MappingProxyType(specs)


HOOKS: Mapping[str, HookSpec] = _collect(sys.modules[__name__])
"""Every hook, by name, in lifecycle order (the order of the definitions above)."""

CLEANUP_HOOKS = frozenset(name for name, spec in HOOKS.items() if spec.cleanup)
"""The cleanup hooks (see :attr:`HookSpec.cleanup`)."""
