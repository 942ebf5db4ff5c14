"""A reference training loop that drives a :class:`~altametris.sara.core.base_callback.CallbackManager`.

:func:`fit` calls the hooks in the documented order over the ``train_step`` and ``validate`` functions it is given,
and is the model for trainers that write their own loop:

* one context for every hook: ``model``, ``epochs``, ``config``, ``control`` always; ``save_checkpoint``,
  ``output_dir`` and ``num_batches`` when known; plus the caller's own ``context`` keywords; and, as the seed API
  documents, the batch's data as ``batch_data`` to ``on_batch_start`` and ``on_batch_end`` (``batch`` is its
  index), and to ``on_train_end`` the last epoch's ``metrics`` (``{}`` when no epoch ended) and, when a callback
  wrote a checkpoint, ``model_path`` (the best file, else the last: the ``best_model_path`` of the first callback
  that has one, such as ``checkpoint``); ``on_train_start`` also gets ``start_epoch``, ``global_step``, ``rank`` and
  ``world_size``, and every training batch hook ``global_step`` (the training batches completed before it, across
  epochs and resumes);
* the finer hooks: a ``train_step`` that takes a ``hooks`` argument gets a
  :class:`~altametris.sara.core.batch_hooks.BatchHooks` to call ``on_after_backward`` and the optimizer hooks with;
  ``validation_data`` with ``validation_step`` run the validation batch by batch, with
  ``on_validation_batch_start`` and ``on_validation_batch_end``; every call of ``save_checkpoint`` that returns is
  followed by ``on_checkpoint_save(path)`` once the hook that saved returned, and ``resumed_from`` (the checkpoint
  whose state the manager was given) by ``on_checkpoint_load(path)`` before ``on_train_start``;
* stop requests (:class:`~altametris.sara.core.control.TrainingControl`) are honoured after every batch and every
  epoch; a stop during the batches still completes the epoch (validation and ``on_epoch_end``), so that every
  logger records it, and ``on_train_end`` always runs; under several processes (``torchrun``) every stop is agreed
  across ranks first (:func:`~altametris.sara.core.distributed.agree_stop`), so all ranks stop at the same point;
* :class:`~altametris.sara.core.control.StopTraining` ends the training at once, as a stop request;
* preemption: in the main thread, ``fit`` turns SIGTERM (what SLURM and Kubernetes send before a kill) into a stop
  request (``handle_sigterm=False`` leaves the signal alone; the previous handler is restored afterwards): the
  current batch finishes, the partial epoch is dropped (no validation, no ``on_epoch_end``: the resume point is the
  last completed epoch, and a resumed training redoes the partial one), ``on_train_end`` runs with
  ``control.stop_reason`` starting with ``"preempted"``, then :class:`~altametris.sara.core.control.Preempted` (a
  ``SystemExit`` with status 143) ends the process after logging how to resume; once SIGTERM came, a second SIGTERM
  or a SIGINT ends the process at once with status 143, naming the hook that was running
  (:mod:`~altametris.sara.core.preemption`); otherwise ``KeyboardInterrupt`` (SIGINT) keeps ending the training as
  an error (``on_exception``), and the state last saved stays usable;
* any other error (a callback's, the train step's, ``KeyboardInterrupt``) runs ``on_exception`` on every callback,
  so that files are closed, and is then re-raised unchanged: a failure of ``on_exception`` itself is logged, never
  raised in its place;
* a callback whose error policy (:attr:`~altametris.sara.core.base_callback.BaseCallback.on_error`) is ``"warn"``
  or ``"disable"`` does not end the training: its failures are logged and the training goes on;
* the state snapshot: the callbacks' state saved with a checkpoint is gathered inside ``save_checkpoint``, which
  callbacks that write checkpoints (:attr:`~altametris.sara.core.base_callback.BaseCallback.saves_checkpoints`) call
  after every other callback's ``on_epoch_end`` of the epoch; a loop of your own gets the same by calling the
  manager's ``on_epoch_end`` once per epoch and saving ``manager.state_dict()`` inside ``save_checkpoint``;
* a resumed training passes ``start_epoch`` after giving the manager its saved state
  (:meth:`~altametris.sara.core.base_callback.CallbackManager.load_state_dict`).

Example:
    >>> from altametris.sara.core.base_callback import BaseCallback, CallbackManager
    >>> class Print(BaseCallback):
    ...     def on_epoch_end(self, epoch, metrics):
    ...         print(epoch, metrics)
    >>> result = fit(
    ...     CallbackManager([Print()]),
    ...     epochs=2,
    ...     data=[1.0, 3.0],
    ...     train_step=lambda x: {"loss": x},
    ...     validate=lambda: {"val_loss": 0.5},
    ... )
    0 {'loss': 2.0, 'val_loss': 0.5}
    1 {'loss': 2.0, 'val_loss': 0.5}
    >>> result.last_epoch, result.stopped
    (1, False)
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar, Union, cast

from ._failures import logger
from .batch_hooks import BatchHooks
from .control import Preempted, StopTraining, TrainingControl
from .distributed import agree_stop, rank_info
from .exceptions import TrainingError
from .files import AnnouncingSaver
from .messages import VALUE_LIMIT, class_name, describe_error, safe_repr
from .preemption import is_preemption, sigterm_stops
from .trainers import STEP_HOOKS, warn_unsupplied

if TYPE_CHECKING:
    from .base_callback import CallbackManager
    from .hookspecs import Metrics

__all__ = ["Data", "FitResult", "SaveCheckpoint", "TrainStep", "Validate", "ValidationStep", "fit"]

Batch = TypeVar("Batch")

TrainStep = Union[
    Callable[[Batch], "Mapping[str, float] | None"], Callable[[Batch, BatchHooks], "Mapping[str, float] | None"]
]
"""Trains on one batch (an item of ``data``, or the batch's number) and returns the batch's metrics.

Called ``train_step(batch)``, or ``train_step(batch, hooks=...)`` when it takes a ``hooks`` argument: a
:class:`~altametris.sara.core.batch_hooks.BatchHooks` for the hooks around the backward pass and the optimizer step."""

ValidationStep = Callable[[Batch], "Mapping[str, float] | None"]
"""Evaluates one validation batch (an item of ``validation_data``) and returns its metrics."""

Validate = Callable[[], "Mapping[str, float] | None"]
"""Evaluates the model and returns the validation metrics (named ``val_...`` by convention)."""

SaveCheckpoint = Callable[[str], object]
"""Writes the model to the path it is given; passed to callbacks as the ``save_checkpoint`` context keyword."""

Data = Union[Iterable[Batch], Callable[[int], Iterable[Batch]]]
"""The batches of an epoch: a re-iterable collection (a list, a data loader), or a function ``epoch -> batches``."""

_RESERVED = frozenset(
    {
        "model", "epochs", "config", "control", "save_checkpoint", "output_dir", "num_batches", "batch_data",
        "model_path", "start_epoch", "global_step", "rank", "world_size",
    }
)  # fmt: skip


class FitResult:
    """What :func:`fit` returns: how far the training went, and why it ended.

    Attributes:
        last_epoch: the last epoch whose ``on_epoch_end`` ran, ``None`` when none did.
        global_step: the training batches completed, this run's and those before it.
        epochs_run: how many epochs this call ran to their end.
        metrics: the last epoch's metrics (``{}`` when none ended).
        stopped: whether a stop was requested (through the control object or :class:`StopTraining`).
        stop_reason: the first stop request's reason, when there is one.
        preempted: whether SIGTERM stopped it (``fit`` then raises :class:`~altametris.sara.core.control.Preempted`,
            which carries this result's ``last_epoch``).
        control: the control object of the training.
    """

    __slots__ = (
        "control", "epochs_run", "global_step", "last_epoch", "metrics", "preempted", "stop_reason", "stopped"
    )  # fmt: skip

    def __init__(
        self,
        *,
        last_epoch: int | None,
        epochs_run: int,
        metrics: Metrics,
        control: TrainingControl,
        global_step: int = 0,
    ) -> None:
        self.last_epoch = last_epoch
        self.global_step = global_step
        self.epochs_run = epochs_run
        self.metrics = metrics
        self.control = control
        self.stopped = control.should_stop
        self.stop_reason = control.stop_reason
        self.preempted = False

    @property
    def next_epoch(self) -> int:
        """The ``start_epoch`` of a training that continues this one."""
        return 0 if self.last_epoch is None else self.last_epoch + 1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(last_epoch={self.last_epoch!r}, epochs_run={self.epochs_run}, "
            f"global_step={self.global_step}, "
            f"stopped={self.stopped!r}, stop_reason={self.stop_reason!r})"
        )


def fit(  # noqa: PLR0912, PLR0915 - argument checks, then one loop
    manager: CallbackManager,
    *,
    epochs: int,
    train_step: TrainStep[Any],
    data: Data[Any] | None = None,
    batches_per_epoch: int | None = None,
    validate: Validate | None = None,
    validate_every_n_epochs: int = 1,
    validation_data: Iterable[Any] | None = None,
    validation_step: ValidationStep[Any] | None = None,
    model: object = None,
    config: object = None,
    control: TrainingControl | None = None,
    start_epoch: int = 0,
    global_step: int | None = None,
    resumed_from: str | os.PathLike[str] | None = None,
    save_checkpoint: SaveCheckpoint | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    context: Mapping[str, Any] | None = None,
    handle_sigterm: bool = True,
) -> FitResult:
    """Train for ``epochs`` epochs, calling ``manager``'s hooks in the documented order.

    Per epoch, ``train_step`` is called once per batch, then ``validate`` (with the validation hooks) when given.
    The epoch's metrics, passed to ``on_epoch_end``, are the mean over the batches of each number ``train_step``
    returned (anything real-valued: ``float``/``int`` subclasses, NumPy scalars and 0-d arrays, one-element tensors,
    as floats; ``None`` is "not measured in this batch"; another value is an error naming its key), plus the
    validation metrics (as floats) (a validation key that is also a training key gets the prefix ``val_``).
    The dict is the callbacks' to extend: ``timer`` adds its timings, which the callbacks after it see.

    Args:
        manager: the callbacks.
        epochs: the number of epochs of the whole training (a resumed one included); epochs are 0-indexed.
        train_step: trains on one batch and returns its metrics.
        data: each epoch's batches, given one by one to ``train_step``: a re-iterable collection, or a function
            ``epoch -> iterable`` (to shuffle per epoch). Exactly one of ``data`` and ``batches_per_epoch``.
        batches_per_epoch: without ``data``, ``train_step`` receives the batch's number, ``0 .. N-1``.
        validate: evaluates the model after each epoch's batches and returns the validation metrics.
        validate_every_n_epochs: validate after epochs N-1, 2N-1, ... only; the other epochs have no validation
            hooks and no validation metrics (the built-ins that monitor a metric skip them).
        validation_data: the validation batches (a re-iterable collection), given one by one to
            ``validation_step``, with ``on_validation_batch_start`` and ``on_validation_batch_end`` around each; the
            validation metrics are their means, as the training metrics. Instead of ``validate``.
        validation_step: evaluates one validation batch and returns its metrics (with ``validation_data``).
        model: passed to every hook as the ``model`` keyword.
        config: the training's configuration, passed to every hook as the ``config`` keyword.
        control: the training's control object; a new one by default. Passed as the ``control`` keyword.
        start_epoch: the first epoch to run: ``0``, or where a resumed training continues.
        global_step: the training batches completed before ``start_epoch``. By default: 0 on a fresh run
            (``start_epoch=0``); on a resumed one, the manager's :attr:`~altametris.sara.core.base_callback.
            CallbackManager.global_step` as its restored state holds it (``fit`` keeps it there at each epoch's end),
            else ``start_epoch`` times the number of batches of ``data``.
        resumed_from: the checkpoint whose callbacks' state the manager was given
            (:meth:`~altametris.sara.core.base_callback.CallbackManager.load_state_dict`) for this resumed run:
            ``on_checkpoint_load(path)`` is called with it before ``on_train_start``.
        save_checkpoint: a function that writes the model to the path it is given, passed as the
            ``save_checkpoint`` keyword (the ``checkpoint`` callback needs it); each checkpoint it writes is announced
            by ``on_checkpoint_save(path)`` once the hook that wrote it returned.
        output_dir: where file-writing callbacks put relative paths, passed as the ``output_dir`` keyword.
        context: more keywords to pass to every hook.
        handle_sigterm: turn SIGTERM into a stop request while the training runs (in the main thread only).

    Returns:
        How far the training went, and why it ended.

    Raises:
        Preempted: after SIGTERM, once ``on_train_end`` ran: a ``SystemExit`` with status 143.
        TrainingError: for arguments that do not fit together, or a callback's failure (after ``on_exception``).
        BaseException: whatever ``train_step`` or ``validate`` raised, unchanged, after ``on_exception``.
    """
    _check_int("epochs", epochs, 0)
    _check_int("start_epoch", start_epoch, 0)
    if start_epoch > epochs:
        raise TrainingError(f"fit(): start_epoch={start_epoch} is beyond epochs={epochs}; nothing would run")
    if not callable(train_step):
        raise TrainingError(f"fit(): train_step must be callable, got {train_step!r}")
    if validate is not None and not callable(validate):
        raise TrainingError(f"fit(): validate must be callable or None, got {validate!r}")
    _check_int("validate_every_n_epochs", validate_every_n_epochs, 1)
    if (validation_data is None) != (validation_step is None):
        raise TrainingError("fit(): validation_data and validation_step go together: give both or neither")
    if validation_step is not None:
        if validate is not None:
            raise TrainingError("fit(): give validate (one call) or validation_data with validation_step, not both")
        if not callable(validation_step):
            raise TrainingError(f"fit(): validation_step must be callable, got {validation_step!r}")
        if isinstance(validation_data, Iterator) or not isinstance(validation_data, Iterable):
            raise TrainingError(
                "fit(): validation_data must be a re-iterable collection (a list, a data loader), got "
                f"{safe_repr(validation_data, VALUE_LIMIT)}"
            )
    if (data is None) == (batches_per_epoch is None):
        raise TrainingError("fit(): give exactly one of data (the batches) and batches_per_epoch (their number)")
    num_batches: int | None = None
    if batches_per_epoch is not None:
        _check_int("batches_per_epoch", batches_per_epoch, 0)
        data = range(batches_per_epoch)
    if isinstance(data, Iterator):
        raise TrainingError(
            "fit(): data is an iterator, which the first epoch would exhaust; pass a re-iterable collection "
            "(a list, a data loader) or a function epoch -> iterable of batches"
        )
    if isinstance(data, Iterable):
        num_batches = _length(data)
    elif not callable(data):
        raise TrainingError(f"fit(): data must be an iterable of batches or a function epoch -> batches, got {data!r}")
    if global_step is None:
        global_step = _resumed_step(manager, start_epoch, num_batches)
    _check_int("global_step", global_step, 0)
    if control is None:
        control = TrainingControl()
    written: list[str] = []  # the checkpoints written during the current hook call
    hook_context: dict[str, Any] = {"model": model, "epochs": epochs, "config": config, "control": control}
    if save_checkpoint is not None:
        hook_context["save_checkpoint"] = AnnouncingSaver(save_checkpoint, written)
    if output_dir is not None:
        hook_context["output_dir"] = pathlib.Path(output_dir)
    if num_batches is not None:
        hook_context["num_batches"] = num_batches
    if context:
        clash = sorted(_RESERVED.intersection(context))
        if clash:
            raise TrainingError(f"fit(): context cannot redefine {clash}; pass them as fit()'s own arguments")
        hook_context.update(context)
    run = _Run(manager, control, hook_context, validate_every_n_epochs)
    run.written = written
    run.global_step = global_step
    run.takes_hooks = _takes_hooks(train_step)
    warn_unsupplied(manager.callbacks, "fit", without=() if run.takes_hooks else STEP_HOOKS)
    if validation_step is not None:
        run.validation = (validation_data, validation_step)  # type: ignore[assignment]  # validation_data checked above
    with sigterm_stops(run, _PREEMPTED) if handle_sigterm else contextlib.nullcontext():
        run.train(
            epochs=epochs,
            start_epoch=start_epoch,
            data=data,
            train_step=train_step,
            validate=validate,
            resumed_from=None if resumed_from is None else os.fspath(resumed_from),
        )
    result = FitResult(
        last_epoch=run.last_epoch,
        epochs_run=run.epochs_run,
        metrics=run.metrics,
        control=control,
        global_step=run.global_step,
    )
    if run.preempted:
        result.preempted = True
        ended = start_epoch - 1 if run.last_epoch is None else run.last_epoch
        done = "before its first epoch ended" if ended < 0 else f"after epoch {ended}"
        resume = (
            "from the start (start_epoch=0)"
            if ended < 0
            else f"from the state saved after epoch {ended} (start_epoch={ended + 1}, the callbacks' state given to "
            "CallbackManager.load_state_dict)"
        )
        message = f"preempted (SIGTERM) {done}: the training ended cleanly; resume it {resume}"
        logger().warning("%s", message)
        raise Preempted(message, last_epoch=None if ended < 0 else ended)
    return result


def _model_path(manager: CallbackManager) -> dict[str, pathlib.Path]:
    """``{"model_path": ...}`` for ``on_train_end``: the best checkpoint a callback kept (else its last), if any."""
    for callback in manager.callbacks:
        path = getattr(callback, "best_model_path", None)
        if isinstance(path, (str, os.PathLike)):
            return {"model_path": pathlib.Path(path)}
    return {}


def _announce(manager: CallbackManager, written: list[str], context: Mapping[str, Any]) -> None:
    """``on_checkpoint_save`` for each checkpoint in ``written`` (by the hook call that just returned), in order.

    Called after the hook, not from inside ``save_checkpoint``: the callback that saved is done, and a failure in
    ``on_checkpoint_save`` is its own callback's, not the saver's.
    """
    while written:
        manager.on_checkpoint_save(written.pop(0), **context)


def _failed(manager: CallbackManager, error: BaseException, context: Mapping[str, Any]) -> None:
    """``on_exception(error)``; a failure of the call as a whole is logged, so that ``error`` is what is re-raised."""
    try:
        manager.on_exception(error, **context)
    except Exception as cleanup_error:  # the manager logs callbacks' failures; this is anything else
        logger().error(
            "on_exception failed (%s); re-raising the error that ended the training",
            describe_error(cleanup_error),
            exc_info=cleanup_error,
        )


def _stopped(control: TrainingControl, stop: StopTraining) -> None:
    """A ``StopTraining`` raised by a callback, recorded as the stop request it is."""
    control.request_stop(stop.reason or "a callback raised StopTraining", source=stop.source)


def _resumed_step(manager: CallbackManager, start_epoch: int, num_batches: int | None) -> int:
    """The ``global_step`` a run starting at ``start_epoch`` starts from, when the caller did not say."""
    if not start_epoch:
        return 0
    if manager.global_step:  # restored by load_state_dict
        return manager.global_step
    if num_batches is not None:
        return start_epoch * num_batches
    logger().warning(
        "fit(): resumed at start_epoch=%d, but neither the restored state nor the data (a function epoch -> "
        "batches) tells how many batches ran before: global_step starts at 0; pass global_step=",
        start_epoch,
    )
    return 0


def _takes_hooks(train_step: Callable[..., object]) -> bool:
    """Whether ``train_step`` takes a ``hooks`` argument, by name."""
    try:
        parameters = inspect.signature(train_step).parameters
    except (TypeError, ValueError):  # a builtin without a signature: called with the batch only
        return False
    hooks = parameters.get("hooks")
    return hooks is not None and hooks.kind in (hooks.POSITIONAL_OR_KEYWORD, hooks.KEYWORD_ONLY)


_PREEMPTED = "preempted: SIGTERM received; the training stops after the current batch, its partial epoch dropped"


class _Run:
    """One call of :func:`fit`: the loop proper, and what it learns on the way."""

    def __init__(
        self, manager: CallbackManager, control: TrainingControl, context: dict[str, Any], every: int = 1
    ) -> None:
        self.manager = manager
        self.every = every
        self.control = control
        self.context = context
        self.last_epoch: int | None = None
        self.epochs_run = 0
        self.metrics: Metrics = {}
        # Several processes (torchrun): every stop is agreed across ranks at each check, or one rank would stop
        # alone and the others wait at their next collective. One process: the control object is read directly.
        self.ranks = rank_info()
        self.agreed = self.ranks.distributed
        self.preempted = False  # set by the SIGTERM handler
        self.global_step = 0  # the training batches completed, across epochs and resumes
        self.takes_hooks = False  # whether train_step gets a BatchHooks
        self.validation: tuple[Iterable[Any], ValidationStep[Any]] | None = None  # batch by batch
        self.written: list[str] = []  # what save_checkpoint wrote during the current hook call, to announce

    def train(
        self,
        *,
        epochs: int,
        start_epoch: int,
        data: Data[Any],
        train_step: TrainStep[Any],
        validate: Validate | None,
        resumed_from: str | None = None,
    ) -> None:
        manager, context = self.manager, self.context
        try:
            try:
                if resumed_from is not None:
                    manager.on_checkpoint_load(resumed_from, **context)
                manager.on_train_start(
                    start_epoch=start_epoch,
                    global_step=self.global_step,
                    rank=self.ranks.rank,
                    world_size=self.ranks.world_size,
                    **context,
                )
                for epoch in range(start_epoch, epochs):
                    if agree_stop(self.control) if self.agreed else self.control.should_stop:
                        is_preemption(self)
                        break
                    batches = data if isinstance(data, Iterable) else data(epoch)
                    self._epoch(epoch, batches, train_step, validate)
            except StopTraining as stop:
                self._stopped(stop)
            try:
                manager.on_train_end(metrics=self.metrics, **_model_path(manager), **context)
                self._announce()
            except StopTraining as stop:  # already ending: only recorded
                self._stopped(stop)
        except BaseException as error:
            _failed(manager, error, context)
            raise

    def _announce(self) -> None:
        _announce(self.manager, self.written, self.context)

    def _stopped(self, stop: StopTraining) -> None:
        _stopped(self.control, stop)

    def _epoch(self, epoch: int, batches: Iterable[Any], train_step: TrainStep[Any], validate: Validate | None) -> None:
        manager, context, control, agreed = self.manager, self.context, self.control, self.agreed
        manager.on_epoch_start(epoch, **context)
        means = _Means("train_step")
        step = self.global_step
        for batch, item in enumerate(batches):
            if agree_stop(control) if agreed else control.should_stop:
                if is_preemption(self):  # the resume point is the last completed epoch: this one is redone
                    self.global_step = step - batch  # ... and its batches with it
                    return
                break
            manager.on_batch_start(batch, batch_data=item, global_step=step, **context)
            if self.takes_hooks:
                hooks = BatchHooks(manager, batch=batch, global_step=step, context=context)
                metrics = cast("Callable[..., Any]", train_step)(item, hooks=hooks)  # hooks: read from its signature
            else:
                metrics = cast("Callable[[Any], Any]", train_step)(item)
            if type(metrics) is not dict:
                metrics = _mapping(metrics, "train_step")
            means.add(metrics)
            manager.on_batch_end(batch, metrics, batch_data=item, global_step=step, **context)
            if self.written:
                self._announce()
            step += 1
            self.global_step = step
        epoch_metrics = means.result()
        manager.global_step = step  # in the state that a checkpoint written at this epoch's end holds
        if (validate is not None or self.validation is not None) and (epoch + 1) % self.every == 0:
            manager.on_validation_start(**context)
            validation = self._validate(validate)
            manager.on_validation_end(validation, **context)
            self._announce()
            for key, value in validation.items():
                epoch_metrics[f"val_{key}" if key in epoch_metrics else key] = value
        manager.on_epoch_end(epoch, epoch_metrics, **context)
        self.last_epoch, self.metrics = epoch, epoch_metrics
        self.epochs_run += 1
        self._announce()

    def _validate(self, validate: Validate | None) -> Metrics:
        """The validation metrics: ``validate()``'s, or the means over the validation batches, with their hooks."""
        if self.validation is None:
            assert validate is not None
            return {
                key: value if type(value) is float else _number(key, value, "validate")
                for key, value in _mapping(validate(), "validate").items()
                if value is not None
            }
        manager, context = self.manager, self.context
        data, validation_step = self.validation
        means = _Means("validation_step")
        for batch, item in enumerate(data):
            manager.on_validation_batch_start(batch, batch_data=item, **context)
            metrics = validation_step(item)
            if type(metrics) is not dict:
                metrics = _mapping(metrics, "validation_step")
            means.add(metrics)
            manager.on_validation_batch_end(batch, metrics, batch_data=item, **context)
        return means.result()


class _Means:
    """The per-key means of the metrics of a run of batches (``None`` values are "not measured in this batch")."""

    __slots__ = ("counts", "producer", "sums")

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: Mapping[str, Any]) -> None:
        sums, counts = self.sums, self.counts
        for key, value in metrics.items():
            kind = type(value)
            if kind is float or kind is int:  # the fast path: plain numbers
                number: float = value
            elif value is None:  # not measured in this batch
                continue
            else:
                number = _number(key, value, self.producer)
            if key in sums:
                sums[key] += number
                counts[key] += 1
            else:
                sums[key] = number
                counts[key] = 1

    def result(self) -> Metrics:
        return {key: total / self.counts[key] for key, total in self.sums.items()}


def _mapping(result: object, producer: str) -> dict[str, Any]:
    """``result`` of ``train_step`` or ``validate`` as a dict (``None`` is no metrics)."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TrainingError(
            f"fit(): {producer} returned {class_name(result)} {safe_repr(result, VALUE_LIMIT)}; it must return a "
            f"mapping of metric names to numbers, such as {{'loss': 0.25}}, or None"
        )
    return dict(result)


def _number(key: str, value: object, producer: str) -> float:
    """``value`` as a float, when it is real-valued; else an error naming ``key``.

    Real-valued: an int or float subclass, a NumPy scalar or 0-d array, a one-element tensor (whatever ``float()``
    takes), but no bool or string.
    """
    if not isinstance(value, (bool, str, bytes)):
        try:
            return float(value)  # type: ignore[arg-type]  # __float__ or __index__, checked by the call
        except (TypeError, ValueError):
            pass
    raise TrainingError(
        f"fit(): the metric {key!r} that {producer} returned is {class_name(value)} {safe_repr(value, VALUE_LIMIT)}, "
        f"not a number; metrics are averaged per epoch: return a float, an int, a NumPy scalar or 0-d array, or a "
        f"one-element tensor (anything float() takes), and keep other values out of the metrics"
    )


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TrainingError(f"fit(): {name} must be an int >= {minimum}, got {value!r}")


def _length(data: Iterable[Any]) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None
