"""The base class of every callback: optional lifecycle hooks, a cleanup hook, an error policy and a state.

The hooks are the seed's eight and the finer ones (backward, optimizer step, validation batches, checkpoints).

Users import :class:`BaseCallback` from :mod:`~altametris.sara.core.base_callback` (the seed's path) or
:mod:`altametris.sara.core`, which re-export it. It is a leaf of the runtime, so that everything that checks, calls or
saves callbacks can depend on it without reaching back up to the manager.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._failures import ErrorPolicy
    from .hookspecs import Metrics

__all__ = ["ORDER_ATTRIBUTE", "TRIGGER_ATTRIBUTE", "BaseCallback", "overrides"]

ORDER_ATTRIBUTE = "_sara_order"
"""The instance attribute that holds the :class:`~altametris.sara.core.order.Placement` of a config item or
``add_callback``."""

TRIGGER_ATTRIBUTE = "_sara_trigger"
"""The instance attribute that holds the :class:`~altametris.sara.core.triggers.Trigger` a callback was registered
with."""


class BaseCallback(abc.ABC):  # noqa: B024 - every hook is optional: nothing is abstract, as in the seed
    """Base class of every callback: override the hooks you need; the others do nothing.

    A hook may name fewer arguments than the hookspec (``def on_epoch_end(self, epoch, metrics)``); it is called with
    those it names. Accept ``**kwargs`` to receive the trainer's context keywords (``model=...``, ``control=...``).

    Callbacks whose state must survive a resume override :meth:`state_dict` and :meth:`load_state_dict`; the
    manager files each state under the callback's :attr:`state_key`.

    What the manager does when a hook raises is the callback's :attr:`on_error` policy: a class may set another
    default (``on_error = "warn"`` for a logger whose server may be down), and an instance its own, directly,
    through :meth:`CallbackManager.add_callback` or through the ``on_error`` key of its config item.

    Example:
        >>> from altametris.sara.core.base_callback import CallbackManager
        >>> class Uploader(BaseCallback):
        ...     on_error = "warn"  # a network error must not end the training
        ...     def on_epoch_end(self, epoch, metrics):
        ...         raise ConnectionError("server down")
        >>> manager = CallbackManager([Uploader()])
        >>> manager.on_epoch_end(0, {})  # logged as a warning; the training goes on
        >>> manager
        CallbackManager(callbacks=[Uploader(on_error='warn')])
    """

    on_error: ErrorPolicy = "raise"
    """The error policy: ``"raise"`` (the default) lets the :class:`~altametris.sara.core.exceptions.TrainingError`
    reach the trainer; ``"warn"`` logs it (callback, hook, epoch or batch, and the traceback the first time) and goes on
    with the next callback; ``"disable"`` logs it once and stops calling the callback for the rest of the run, after
    giving it ``on_exception`` with its own failure so that it closes its files. Stop requests
    (:class:`~altametris.sara.core.control.StopTraining`), ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
    The manager checks it when the callback is registered and at every ``on_train_start``, and applies the one the
    callback has when it fails: a change takes effect at once. A warning is logged once per callback and hook with its
    traceback, then at most once per epoch, with the number of failures since the last one."""

    rank_zero_only: ClassVar[bool] = False
    """Whether the callback runs on rank 0 only, in a training of several processes (under ``torchrun``).

    Callbacks that write files or print set it to ``True``, or every rank would write the same file; the manager
    then leaves them out on the other ranks (see :mod:`~altametris.sara.core.distributed`). It is read when the
    manager's callbacks change and at every ``on_train_start``."""

    parameter_choices: ClassVar[Mapping[str, Sequence[object]]] = {}
    """The values some constructor parameters accept, when a ``Literal`` annotation cannot say it.

    ``sara-callbacks show`` lists them, and a config's value outside them is refused before the constructor runs,
    naming the parameter. A ``Literal["min", "max"]`` annotation does the same without this declaration; declare the
    choices here when the annotation must stay wider (``mode: str``, for Python callers passing a ``str``) or the
    values are computed (``{"mode": MODES}``). Example: ``parameter_choices = {"mode": ("min", "max")}``."""

    saves_checkpoints: ClassVar[bool] = False
    """Whether the callback writes checkpoints (calls the trainer's ``save_checkpoint``).

    The manager calls such callbacks after all the others at every hook (in registration order among themselves),
    the way Lightning runs its ``ModelCheckpoint`` last: the state a trainer gathers inside ``save_checkpoint``
    (:meth:`CallbackManager.state_dict`) then holds every other callback's end-of-epoch state, one consistent snapshot
    of the training as of that checkpoint. It is one of the order's constraints (:mod:`~altametris.sara.core.order`):
    a callback that declares it runs after a writer (``run_after = ("checkpoint",)``) does. It is read when the
    manager's callbacks change."""

    run_before: ClassVar[tuple[str, ...]] = ()
    """Plugin names this callback runs before, at every hook (each name stands for every callback of that plugin; a
    name not enabled is no constraint). A config item's ``before`` key adds to it
    (:mod:`~altametris.sara.core.order`)."""

    run_after: ClassVar[tuple[str, ...]] = ()
    """Plugin names this callback runs after, at every hook (``run_after = ("checkpoint",)`` for an uploader of the
    files a checkpoint writes). A config item's ``after`` key adds to it (:mod:`~altametris.sara.core.order`)."""

    def on_checkpoint_load(self, path: str, **kwargs: Any) -> None:
        """Called once in a resumed run, after the callbacks' state was restored from ``path``, before training."""

    def on_train_start(self, **kwargs: Any) -> None:
        """Called once, before the first epoch (context: ``start_epoch``, ``global_step``, ``rank``, ``world_size``)."""

    def on_train_end(self, **kwargs: Any) -> None:
        """Called once, after the last epoch (or a stop request), when the training did not fail."""

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Called at the start of every epoch (``epoch`` is 0-indexed)."""

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Called at the end of every epoch, after validation, with the epoch's metrics."""

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Called before every training batch (``batch`` is 0-indexed within the epoch)."""

    def on_after_backward(self, batch: int, **kwargs: Any) -> None:
        """Called after a training batch's backward pass, when the gradients are there to read."""

    def on_before_optimizer_step(self, batch: int, **kwargs: Any) -> None:
        """Called right before the optimizer steps (context: ``optimizer`` where known); gradients are final."""

    def on_after_optimizer_step(self, batch: int, **kwargs: Any) -> None:
        """Called right after the optimizer stepped: the weights changed."""

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Called after every training batch with the batch's metrics."""

    def on_validation_start(self, **kwargs: Any) -> None:
        """Called before the validation of every epoch."""

    def on_validation_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Called before every validation batch (``batch`` is 0-indexed within the validation)."""

    def on_validation_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Called after every validation batch with its metrics (``{}`` where the trainer has none per batch)."""

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Called after the validation of every epoch with the validation metrics."""

    def on_checkpoint_save(self, path: str, **kwargs: Any) -> None:
        """Called right after the trainer wrote a resumable checkpoint at ``path``: make your records durable."""

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Called when the training fails, before the trainer re-raises ``error``: close files here."""

    @property
    def state_key(self) -> str:
        """The key of this callback's state in :meth:`CallbackManager.state_dict`; unique among stateful callbacks.

        Defaults to the class's qualified name: override it when one training uses two stateful instances of a class.
        """
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """The state to save with a checkpoint so that a resumed training continues where it stopped."""
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""


BaseCallback.__module__ = "altametris.sara.core.base_callback"  # its documented home, as reprs and the docs show it


def overrides(callback: BaseCallback | type[BaseCallback], name: str) -> bool:
    """Whether ``callback`` (an instance or a class) has its own ``name`` (a hook, ``state_dict`` ...).

    A function assigned on an instance counts, as does a static or class method; ``BaseCallback``'s own no-op does not.
    """
    attribute = getattr(callback, name)
    function = attribute if isinstance(callback, type) else getattr(attribute, "__func__", attribute)
    return function is not getattr(BaseCallback, name)
