"""A training loop of your own with what :func:`~altametris.sara.core.loop.fit` gives: :class:`TrainingRun`.

Your loop keeps its model, data and optimizer; the run calls the hooks in the documented order with the documented
context, and does the rest: the stop checks (agreed across ranks under ``torchrun``), SIGTERM as a stop request,
``global_step``, the callbacks' state for your checkpoint (:meth:`TrainingRun.state`) and its restoration, and
``on_checkpoint_save`` after a checkpoint is written::

    with TrainingRun(manager, epochs=40, model=model, state=saved.get("sara"), resumed_from=path) as run:
        for epoch in run.epochs():                   # on_epoch_start; ends when a stop was asked
            for batch, item in run.batches(loader):  # on_batch_start; a stop ends the epoch after its batch
                loss = loss_function(model(item[0]), item[1])
                loss.backward()
                run.after_backward()
                run.before_optimizer_step(optimizer)
                optimizer.step()
                run.after_optimizer_step()
                run.batch_end({"loss": loss.item()})
            run.validation_start()
            run.validation_end({"val_loss": evaluate(model)})
            run.epoch_end()                          # on_epoch_end with the batches' means and the validation
            torch.save({"model": model.state_dict(), "sara": run.state()}, "last.pt")

SIGTERM (what SLURM and Kubernetes send before a kill) finishes the current batch, drops the partial epoch, runs
``on_train_end`` with ``control.stop_reason`` starting with ``"preempted"`` and then raises
:class:`~altametris.sara.core.control.Preempted` (exit status 143) as ``fit`` does; the last state your loop saved
is the resume point. Any other exception runs ``on_exception`` and propagates.

Example:
    >>> from altametris.sara.core import CallbackManager
    >>> manager = CallbackManager.from_config({"callbacks": ["history"]})
    >>> with TrainingRun(manager, epochs=2, handle_sigterm=False) as run:
    ...     for epoch in run.epochs():
    ...         for batch, item in run.batches([1.0, 3.0]):
    ...             run.batch_end({"loss": item})
    ...         metrics = run.epoch_end()  # the batches' means: {'loss': 2.0}
    ...         saved = run.state()
    >>> manager.callbacks[0].metrics, run.global_step, saved["epoch"]
    ([{'loss': 2.0}, {'loss': 2.0}], 4, 1)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable

from ._failures import logger
from .batch_hooks import BatchHooks
from .control import Preempted, StopTraining, TrainingControl
from .distributed import agree_stop, rank_info
from .exceptions import StateError, TrainingError
from .files import AnnouncingSaver
from .loop import _PREEMPTED, _RESERVED, _announce, _failed, _Means, _model_path, _stopped
from .messages import VALUE_LIMIT, safe_repr
from .preemption import is_preemption, sigterm_stops

if TYPE_CHECKING:
    import types
    from collections.abc import Iterable, Iterator, Mapping

    from .base_callback import CallbackManager
    from .hookspecs import Metrics

__all__ = ["TrainingRun"]


class _Preemption(BaseException):
    """Unwinds the ``with`` block at the batch boundary after a SIGTERM: the partial epoch is dropped."""


class TrainingRun:
    """One training of a loop of your own, as a context manager: the hooks, stops, state and SIGTERM of ``fit``.

    Args:
        manager: the callbacks.
        epochs: the number of epochs of the whole training (a resumed run goes on to the same number).
        model: the ``model`` context keyword.
        config: the ``config`` context keyword (the run's configuration, for callbacks that record it).
        state: what :meth:`state` returned in the run being resumed, read back from your checkpoint; ``None`` for a
            fresh run. The callbacks get their state back, the run starts at the epoch after the saved one, and a
            stop the saved run had asked (early stopping, say) ends this one at once, with the same reason.
        resumed_from: the checkpoint ``state`` was read from, passed to ``on_checkpoint_load``.
        save_checkpoint: the ``save_checkpoint(path)`` callable that checkpoint callbacks call (put
            :meth:`state` in the file it writes); each file it writes is announced by ``on_checkpoint_save``.
        output_dir: the ``output_dir`` context keyword (where callbacks write their files).
        num_batches: the ``num_batches`` context keyword (training batches per epoch), when known.
        context: more context keywords for every hook (``config``, ``trainer`` ...).
        handle_sigterm: turn SIGTERM into a preemption (in the main thread), as ``fit`` does.

    Attributes:
        control: the run's :class:`~altametris.sara.core.control.TrainingControl`, passed to every hook.
        epoch: the epoch in progress (``None`` before the first).
        global_step: the training batches completed, across epochs and resumes.
        start_epoch: the first epoch of this run (the saved one + 1 on a resume).
        metrics: the metrics of the last epoch that ended.
        preempted: whether SIGTERM stopped the run.
    """

    def __init__(
        self,
        manager: CallbackManager,
        *,
        epochs: int,
        model: object = None,
        config: object = None,
        state: Mapping[str, Any] | None = None,
        resumed_from: str | None = None,
        save_checkpoint: Callable[[str], object] | None = None,
        output_dir: object = None,
        num_batches: int | None = None,
        context: Mapping[str, Any] | None = None,
        handle_sigterm: bool = True,
    ) -> None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise TrainingError(
                f"TrainingRun(): epochs: expected an integer >= 0, got {safe_repr(epochs, VALUE_LIMIT)}"
            )
        reserved = sorted(_RESERVED & set(context or ()))  # the same keywords as fit()'s
        if reserved:
            raise TrainingError(
                f"TrainingRun(): context cannot redefine {reserved}; pass them as TrainingRun()'s own arguments"
            )
        self.manager = manager
        self.epochs_total = epochs
        self.control = TrainingControl()
        self.epoch: int | None = None
        self.global_step = 0
        self.start_epoch = 0
        self.metrics: Metrics = {}
        self.preempted = False
        self._written: list[str] = []
        self._handle_sigterm = handle_sigterm
        self._resumed_from = None if resumed_from is None else str(resumed_from)
        self._stack = contextlib.ExitStack()
        self._ranks = rank_info()
        self._hooks: BatchHooks | None = None  # the batch in progress
        self._item: Any = None  # its data, the batch_data context keyword
        self._ended = False  # the batch in progress called batch_end
        self._epoch_step = 0  # global_step when the epoch in progress started
        self._means = _Means("batch_end")
        self._validation: Metrics = {}
        self._ending: int | None = None  # the epoch whose on_epoch_end runs (state() saves it as done)
        self._last_epoch: int | None = None
        self.context: dict[str, Any] = {"model": model, "epochs": epochs, "config": config, "control": self.control}
        if save_checkpoint is not None:
            self.context["save_checkpoint"] = AnnouncingSaver(save_checkpoint, self._written)
        if output_dir is not None:
            self.context["output_dir"] = output_dir
        if num_batches is not None:
            self.context["num_batches"] = num_batches
        self.context.update(context or {})
        if state is not None:
            self._restore(state)

    # -- state -------------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a resume needs, as plain data for your checkpoint: the callbacks' state, the epoch done, the stops.

        Call it after :meth:`epoch_end` (or inside ``save_checkpoint`` during it): the epoch counts as done. A
        preemption's stop is left out, so that a resume trains on.
        """
        epoch = self._ending if self._ending is not None else self._last_epoch
        requests = self.control.requests
        stops = [[request.reason, request.source] for request in requests if request.source != Preempted.source]
        if self.control.should_stop and not requests:  # control.should_stop = True, set directly
            stops.append(["stop requested (control.should_stop set)", None])
        return {"callbacks": self.manager.state_dict(), "epoch": -1 if epoch is None else epoch, "stops": stops}

    def _restore(self, state: Mapping[str, Any]) -> None:
        try:
            callbacks, epoch, stops = state["callbacks"], state["epoch"], state["stops"]
        except (KeyError, TypeError) as error:
            raise StateError(
                f"TrainingRun(): state: expected what TrainingRun.state() returned (keys 'callbacks', 'epoch', "
                f"'stops'), got {safe_repr(state, VALUE_LIMIT)}"
            ) from error
        if not isinstance(epoch, int) or epoch < -1:
            raise StateError(f"TrainingRun(): state['epoch']: expected an integer >= -1, got {safe_repr(epoch)}")
        if not isinstance(stops, list) or not all(
            isinstance(stop, (list, tuple)) and len(stop) == 2 and isinstance(stop[0], str) for stop in stops
        ):
            raise StateError(f"TrainingRun(): state['stops']: expected [[reason, source], ...], got {safe_repr(stops)}")
        self.manager.load_state_dict(callbacks)
        self.start_epoch = epoch + 1
        self._last_epoch = None if epoch < 0 else epoch
        self.global_step = self.manager.global_step
        for reason, source in stops:
            self.control.request_stop(reason, source=source)

    # -- the run -----------------------------------------------------------------------------------------------------

    def __enter__(self) -> TrainingRun:
        if self._handle_sigterm:
            self._stack.enter_context(sigterm_stops(self, _PREEMPTED))
        try:
            if self._resumed_from is not None:
                self.manager.on_checkpoint_load(self._resumed_from, **self.context)
            self.manager.on_train_start(
                start_epoch=self.start_epoch,
                global_step=self.global_step,
                rank=self._ranks.rank,
                world_size=self._ranks.world_size,
                **self.context,
            )
            self._announce()
        except StopTraining as stop:  # no epoch will start: run.epochs() yields none
            self._stopped(stop)
        except BaseException as error:
            self._failed(error)
            self._stack.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: types.TracebackType | None
    ) -> bool:
        with self._stack:
            if error is not None and not isinstance(error, (_Preemption, StopTraining)):
                self._failed(error)
                return False
            if isinstance(error, StopTraining):
                self._stopped(error)
            try:
                self.manager.on_train_end(metrics=self.metrics, **_model_path(self.manager), **self.context)
                self._announce()
            except StopTraining as stop:  # already ending: only recorded
                self._stopped(stop)
            except BaseException as failure:  # as in fit(): the callbacks close their files
                self._failed(failure)
                raise
        if self.preempted:
            ended = self._last_epoch
            message = (
                f"preempted (SIGTERM) {'before its first epoch ended' if ended is None else f'after epoch {ended}'}: "
                "the training ended cleanly; resume it from the last TrainingRun.state() your loop saved"
            )
            logger().warning("%s", message)
            raise Preempted(message, last_epoch=ended)
        return True  # a StopTraining or the preemption's unwinding ended the block: handled

    def _failed(self, error: BaseException) -> None:
        _failed(self.manager, error, self.context)

    def _stopped(self, stop: StopTraining) -> None:
        _stopped(self.control, stop)

    def _should_stop(self) -> bool:
        return agree_stop(self.control) if self._ranks.distributed else self.control.should_stop

    def _announce(self) -> None:
        _announce(self.manager, self._written, self.context)

    def epochs(self) -> Iterator[int]:
        """The epochs to train, ``on_epoch_start`` before each; none more once a stop was asked."""
        for epoch in range(self.start_epoch, self.epochs_total):
            if self._should_stop():
                is_preemption(self)
                return
            self.epoch, self._epoch_step = epoch, self.global_step
            self._means, self._validation, self._ending = _Means("batch_end"), {}, None
            self.manager.on_epoch_start(epoch, **self.context)
            yield epoch
            if self._last_epoch != epoch and not self.preempted:
                raise TrainingError(f"TrainingRun: epoch {epoch} ended without run.epoch_end(): call it once per epoch")

    def batches(self, data: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """``(batch, item)`` for each item of ``data``, ``on_batch_start`` before each; a stop ends the epoch.

        After a SIGTERM, the ``with`` block is left at the next batch: the partial epoch is dropped.
        """
        for batch, item in enumerate(data):
            if self._should_stop():
                if is_preemption(self):
                    self.global_step = self._epoch_step  # the epoch is redone on resume, its batches with it
                    raise _Preemption
                return
            self._hooks = BatchHooks(self.manager, batch=batch, global_step=self.global_step, context=self.context)
            self._ended, self._item = False, item
            self.manager.on_batch_start(batch, batch_data=item, global_step=self.global_step, **self.context)
            yield batch, item
            if not self._ended:
                raise TrainingError(
                    f"TrainingRun: batch {batch} ended without run.batch_end(metrics): call it once per batch"
                )

    def _batch(self, call: str) -> BatchHooks:
        if self._hooks is None or self._ended:
            raise TrainingError(f"TrainingRun.{call}(): no batch in progress; call it inside run.batches()")
        return self._hooks

    def after_backward(self) -> None:
        """``on_after_backward``, after ``loss.backward()``."""
        self._batch("after_backward").after_backward()

    def before_optimizer_step(self, optimizer: object = None) -> None:
        """``on_before_optimizer_step`` (context ``optimizer`` when given), right before ``optimizer.step()``."""
        self._batch("before_optimizer_step").before_optimizer_step(optimizer)

    def after_optimizer_step(self) -> None:
        """``on_after_optimizer_step``, after ``optimizer.step()``."""
        self._batch("after_optimizer_step").after_optimizer_step()

    def batch_end(self, metrics: Mapping[str, Any]) -> None:
        """``on_batch_end`` with the batch's metrics (plain numbers; their means are the epoch's)."""
        hooks = self._batch("batch_end")
        values = dict(metrics)
        self._means.add(values)
        self.manager.on_batch_end(
            hooks.batch, values, batch_data=self._item, global_step=self.global_step, **self.context
        )
        self._ended = True
        self.global_step += 1
        self._announce()

    def validation_start(self) -> None:
        """``on_validation_start``."""
        self.manager.on_validation_start(**self.context)

    def validation_batch_start(self, batch: int) -> None:
        """``on_validation_batch_start(batch)``."""
        self.manager.on_validation_batch_start(batch, **self.context)

    def validation_batch_end(self, batch: int, metrics: Mapping[str, Any]) -> None:
        """``on_validation_batch_end(batch, metrics)``."""
        self.manager.on_validation_batch_end(batch, dict(metrics), **self.context)

    def validation_end(self, metrics: Mapping[str, Any]) -> None:
        """``on_validation_end`` with the validation's metrics (added to the epoch's, ``val_`` on a clash)."""
        self._validation = dict(metrics)
        self.manager.on_validation_end(self._validation, **self.context)
        self._announce()

    def epoch_end(self, metrics: Mapping[str, Any] | None = None) -> Metrics:
        """``on_epoch_end`` with ``metrics``, by default the batches' means and the validation's; returns them."""
        if self.epoch is None:
            raise TrainingError("TrainingRun.epoch_end(): no epoch in progress; call it inside run.epochs()")
        if metrics is None:
            epoch_metrics = self._means.result()
            for key, value in self._validation.items():
                epoch_metrics[f"val_{key}" if key in epoch_metrics else key] = value
        else:
            epoch_metrics = dict(metrics)
        self.manager.global_step = self.global_step  # in the state a checkpoint written at this epoch's end holds
        self._ending = self.epoch
        self.manager.on_epoch_end(self.epoch, epoch_metrics, **self.context)
        self._last_epoch, self._ending, self.metrics = self.epoch, None, epoch_metrics
        self._announce()
        return epoch_metrics

    def checkpoint_saved(self, path: object) -> None:
        """``on_checkpoint_save(path)`` for a checkpoint your loop wrote itself (holding :meth:`state`)."""
        self.manager.on_checkpoint_save(str(path), **self.context)
