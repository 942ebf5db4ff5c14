"""The hooks inside one training batch, as one-line calls for the code that trains on it.

A trainer that owns the whole batch (:func:`~altametris.sara.core.loop.fit`, a loop of your own) calls
``on_batch_start`` and ``on_batch_end`` itself; what happens between them (the backward pass, the optimizer step) is
the training step's. :class:`BatchHooks` gives that step the three hooks in between, with the batch's number, its
``global_step`` and the trainer's context already filled in:

    >>> from altametris.sara.core.base_callback import BaseCallback, CallbackManager
    >>> class Steps(BaseCallback):
    ...     def on_before_optimizer_step(self, batch, optimizer=None, global_step=None, **kwargs):
    ...         print("step", batch, global_step, optimizer)
    >>> hooks = BatchHooks(CallbackManager([Steps()]), batch=3, global_step=13, context={})
    >>> hooks.after_backward()
    >>> hooks.before_optimizer_step("sgd")
    step 3 13 sgd
    >>> hooks.after_optimizer_step()

``fit`` passes one to a ``train_step`` that takes a ``hooks`` argument (``def train_step(batch, hooks): ...``).
With gradient accumulation, call the optimizer hooks only on the batches where the optimizer steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .base_callback import CallbackManager

__all__ = ["BatchHooks"]


class BatchHooks:
    """The hooks inside one training batch, as one-line calls.

    They are ``on_after_backward``, ``on_before_optimizer_step`` and ``on_after_optimizer_step``.

    Args:
        manager: the callbacks.
        batch: the batch's number within its epoch.
        global_step: the training batches completed before this one, across epochs and resumes.
        context: the trainer's context keywords, passed to every hook (``global_step`` is added).
    """

    __slots__ = ("_context", "_manager", "batch", "global_step")

    def __init__(self, manager: CallbackManager, *, batch: int, global_step: int, context: Mapping[str, Any]) -> None:
        self._manager = manager
        self._context = context
        self.batch = batch
        self.global_step = global_step

    def after_backward(self) -> None:
        """Call ``on_after_backward``: after ``loss.backward()``, when the gradients are there to read."""
        self._manager.on_after_backward(self.batch, global_step=self.global_step, **self._context)

    def before_optimizer_step(self, optimizer: object = None) -> None:
        """Call ``on_before_optimizer_step`` right before ``optimizer.step()``, the gradients final.

        The context holds ``optimizer`` when it is given.
        """
        context = self._context if optimizer is None else {**self._context, "optimizer": optimizer}
        self._manager.on_before_optimizer_step(self.batch, global_step=self.global_step, **context)

    def after_optimizer_step(self) -> None:
        """Call ``on_after_optimizer_step``: right after ``optimizer.step()``, the weights changed."""
        self._manager.on_after_optimizer_step(self.batch, global_step=self.global_step, **self._context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch={self.batch}, global_step={self.global_step})"
