"""Which hooks each trainer supplies: one table, importing no framework.

Every trainer (the reference :func:`~altametris.sara.core.loop.fit`, a loop of your own on
:class:`~altametris.sara.core.training_run.TrainingRun`, and each bridge of
:mod:`altametris.sara.integrations`) calls the nine hooks of the seed and ``on_exception``; the finer hooks only where
its framework shows the moment. :data:`SUPPLIED` says which, by trainer name; a callback that overrides a hook its
trainer never calls is warned about once, when the training starts (:func:`warn_unsupplied`), and
``sara-callbacks check CONFIG --trainer NAME`` reports the same without importing the framework:

    >>> from altametris.sara.core.base_callback import BaseCallback
    >>> class Clip(BaseCallback):
    ...     def on_after_backward(self, batch, **kwargs): ...
    >>> unsupplied(Clip(), "keras")
    ['on_after_backward']
    >>> unsupplied(Clip(), "lightning")
    []
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from ._callback import overrides
from .exceptions import UnsuppliedHookWarning
from .hookspecs import HOOKS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ._callback import BaseCallback

__all__ = ["STEP_HOOKS", "SUPPLIED", "trainer_names", "unsupplied", "unsupplied_message", "warn_unsupplied"]

STEP_HOOKS = frozenset({"on_after_backward", "on_before_optimizer_step", "on_after_optimizer_step"})
"""The hooks around the backward pass and the optimizer step: ``fit`` supplies them only through the ``hooks``
argument of a ``train_step`` that takes one (:class:`~altametris.sara.core.batch_hooks.BatchHooks`)."""

_ALL = frozenset(HOOKS)

SUPPLIED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # fit: all of them; STEP_HOOKS only when train_step takes ``hooks`` (warn_unsupplied(..., without=STEP_HOOKS)).
        "fit": _ALL,
        # TrainingRun: a loop of your own calls each hook as a one-line method of the run
        "training_run": _ALL,
        "lightning": _ALL,
        # No event between the backward pass and the optimizer step's preparation; none before a prediction step.
        "transformers": _ALL - {"on_after_backward", "on_validation_batch_start"},
        # model.fit runs backward and the optimizer inside its compiled train_step: no callback sees them.
        "keras": _ALL - STEP_HOOKS,
    }
)
"""Trainer name -> the hooks it calls (where the moment occurs: the checkpoint hooks when a checkpoint is written or
resumed from, the optimizer hooks on the batches where the optimizer steps)."""


def trainer_names() -> list[str]:
    """The trainers :data:`SUPPLIED` knows, sorted."""
    return sorted(SUPPLIED)


def unsupplied(callback: BaseCallback, trainer: str, *, without: Iterable[str] = ()) -> list[str]:
    """The hooks ``callback`` overrides that ``trainer`` never calls, in hookspec order.

    Args:
        callback: the callback.
        trainer: a name of :data:`SUPPLIED`.
        without: hooks this training does not supply though its trainer can (``fit`` without ``hooks``).

    A callback whose ``warn_unsupplied_hooks`` attribute is false (the testing kit's ``EventRecorder``, which
    overrides every hook to record whichever run) has none.

    Raises:
        ValueError: for an unknown ``trainer``, naming the known ones.
    """
    supplied = SUPPLIED.get(trainer)
    if supplied is None:
        raise ValueError(f"unknown trainer {trainer!r}; expected one of {', '.join(trainer_names())}")
    if not getattr(callback, "warn_unsupplied_hooks", True):  # a recorder of every hook, say
        return []
    missing = (_ALL - supplied) | frozenset(without)
    return [name for name in HOOKS if name in missing and overrides(callback, name)]


def warn_unsupplied(callbacks: Iterable[BaseCallback], trainer: str, *, without: Iterable[str] = ()) -> None:
    """Warn once per callback and hook that ``trainer`` never calls (a trainer calls this as its training starts).

    The warning is an :class:`~altametris.sara.core.exceptions.UnsuppliedHookWarning`.
    """
    import warnings

    skipped = frozenset(without)
    for callback in list(callbacks):
        for hook in unsupplied(callback, trainer, without=skipped):
            warnings.warn(unsupplied_message(type(callback).__qualname__, hook, trainer), UnsuppliedHookWarning, 2)


def unsupplied_message(name: str, hook: str, trainer: str) -> str:
    """The one sentence of an unsupplied hook, for the warning and for ``sara-callbacks check --trainer``."""
    why = " without a train_step that takes hooks" if trainer == "fit" else ""
    return (
        f"{name} overrides {hook}, which the {trainer!r} trainer never calls{why}: that method will not run; "
        f"see the hook x trainer table in docs/trainers.md"
    )
